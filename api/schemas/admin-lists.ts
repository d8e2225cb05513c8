import { z } from 'zod';
import { fields, listQuery } from '../../domain/validate.js';
import type { PaymentStatus } from '../../domain/refund-math.js';
import { OPERATION_TYPES, TRANSACTION_TYPES } from '../../operations/index.js';
import { rateInput } from './common.js';

// From the registry: a new kind's types are filters here with no change.
const operationType = z.enum(OPERATION_TYPES as [string, ...string[]]);
const transactionType = z.enum(TRANSACTION_TYPES as [string, ...string[]]);
const PAYMENT_STATUSES = ['completed', 'partially_refunded', 'refunded'] as const satisfies readonly PaymentStatus[];

/** Whole seconds, as digits only ("" and "1e3" are not ages). */
const seconds = z
  .string()
  .regex(/^\d{1,9}$/, 'must be a whole number of seconds')
  .transform(Number);

/** Any UUID Postgres holds (ids of rows made outside the API need not be RFC 4122 versions), as path ids are taken. */
const id = z.guid();

const before = (q: { from?: string; to?: string }) => q.from === undefined || q.to === undefined || Date.parse(q.from) < Date.parse(q.to);

export const merchantListQuery = z.strictObject({ ...listQuery, status: z.enum(['active', 'suspended']).optional(), q: fields.text(100).optional() });

export const updateMerchantBody = z
  .strictObject({ name: fields.text(200).optional(), fee_rate: rateInput(4).optional() })
  .refine((b) => b.name !== undefined || b.fee_rate !== undefined, 'give name or fee_rate to change');

export const cardListQuery = z.strictObject({
  ...listQuery,
  member_id: id.optional(),
  status: z.enum(['active', 'frozen', 'used', 'expired', 'closed']).optional(),
  type: z.enum(['standard', 'prepaid', 'corporate', 'voucher']).optional(),
});

export const transactionListQuery = z
  .strictObject({
    ...listQuery,
    merchant_id: id.optional(),
    card_id: id.optional(),
    member_id: id.optional(),
    type: transactionType.optional(),
    status: z.enum(PAYMENT_STATUSES).optional(),
    from: fields.isoTime.optional(),
    to: fields.isoTime.optional(),
    // Numbers are printed in capitals (PAY…, REF…, RCH…); a lower-case copy finds the same one.
    tx_no: z
      .string()
      .regex(/^[A-Za-z0-9]{3,64}$/, 'must be a transaction number such as PAY2026120112345678901234')
      .transform((s) => s.toUpperCase())
      .optional(),
  })
  .refine(before, { message: 'from must be before to', path: ['from'] });

export const operationListQuery = z.strictObject({
  ...listQuery,
  // requires_approval lists what waits for a second admin key (four eyes).
  status: z.enum(['requires_approval', 'queued', 'processing', 'succeeded', 'failed', 'rejected']).optional(),
  type: operationType.optional(),
  older_than_s: seconds.optional(),
});
