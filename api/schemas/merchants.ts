import { z } from 'zod';
import { fields } from '../../domain/validate.js';
import { rateInput } from './common.js';

export const createMerchantBody = z.strictObject({
  code: z.string().regex(/^[A-Z0-9_-]{3,32}$/, 'must be 3 to 32 characters of A-Z, 0-9, _ and -'),
  name: fields.text(200),
  fee_rate: rateInput(4).default('0.0000'),
  settlement_mode: z.literal('t_plus_1').default('t_plus_1'),
});

export const createApiKeyBody = z.strictObject({ name: fields.text(100).optional() });
