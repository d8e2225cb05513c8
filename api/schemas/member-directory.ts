import { z } from 'zod';
import { fields, listQuery } from '../../domain/validate.js';
import { createMemberBody, identityBody } from './members.js';

// The same rules as a member's creation: what may be stored may be looked up, and no more.
const phone = createMemberBody.shape.phone.unwrap();
const email = createMemberBody.shape.email.unwrap();

export const memberLookupQuery = z
  .strictObject({
    ...listQuery,
    phone: phone.optional(),
    email: email.optional(),
    provider: identityBody.shape.provider.optional(),
    external_id: identityBody.shape.external_id.optional(),
    q: fields.text(100).optional(),
    status: z.enum(['active', 'suspended', 'erased']).optional(),
  })
  .refine((q) => (q.provider === undefined) === (q.external_id === undefined), { message: 'provider and external_id go together', path: ['external_id'] });

/** `null` removes a phone or email; a name is required of every member, so it can only be replaced. */
export const updateMemberBody = z
  .strictObject({
    name: fields.text(100).optional(),
    phone: phone.nullable().optional(),
    email: email.nullable().optional(),
  })
  .refine((b) => b.name !== undefined || b.phone !== undefined || b.email !== undefined, 'give name, phone or email to change');
