import { z } from 'zod';
import { fields } from '../../domain/validate.js';

export const identityBody = z.strictObject({
  // An open set (wechat, alipay, line, …): lower-case names keep one provider from being spelled two ways.
  provider: z.string().regex(/^[a-z][a-z0-9_]{1,31}$/, 'must be a lower-case provider name such as line or wechat'),
  external_id: fields.text(200),
});

export const createMemberBody = z.strictObject({
  name: fields.text(100),
  phone: z
    .string()
    .trim()
    .regex(/^\+?[0-9][0-9 -]{5,22}$/, 'must be a phone number')
    .optional(),
  email: z.email().max(254).optional(),
  identity: identityBody.optional(),
});

export const emptyBody = z.strictObject({});
