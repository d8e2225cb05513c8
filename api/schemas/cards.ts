import { z } from 'zod';
import { bindingPasswordProblem } from '../../domain/binding-password.js';
import { fields } from '../../domain/validate.js';
import { rateInput } from './common.js';

const SHARED = ['prepaid', 'corporate'];

export const createCardBody = z
  .strictObject({
    type: z.enum(['prepaid', 'corporate', 'voucher']),
    owner_member_id: z.uuid({ error: (issue) => (issue.input === undefined ? 'is required: every card has an owner member' : 'must be a member id (UUID)') }),
    fixed_discount: rateInput(3).optional(),
    face_value: fields.amount.optional(),
    expires_at: fields.isoTime.optional(),
    binding_password: z.string().optional(),
    // The payment provider's id for the money behind a voucher: required from app keys.
    payment_reference: z.string().trim().min(1).max(200).optional(),
  })
  .superRefine((body, ctx) => {
    const issue = (field: string, message: string) => ctx.addIssue({ code: 'custom', path: [field], message });
    if (body.fixed_discount !== undefined && body.type !== 'corporate') issue('fixed_discount', 'only corporate cards have a fixed discount');
    if (body.type === 'voucher' && body.face_value === undefined) issue('face_value', 'is required for vouchers');
    if (body.type !== 'voucher' && body.face_value !== undefined) issue('face_value', 'only vouchers have a face value');
    if (body.type !== 'voucher' && body.payment_reference !== undefined) issue('payment_reference', 'only vouchers are paid for at creation');
    if (SHARED.includes(body.type)) {
      const problem = body.binding_password === undefined ? 'is required for shared cards' : bindingPasswordProblem(body.binding_password);
      if (problem) issue('binding_password', problem);
    } else if (body.binding_password !== undefined) {
      issue('binding_password', 'only shared cards (prepaid, corporate) have a binding password');
    }
  });

/** The binding password grants `member`: knowing it must not let anyone pick admin. Roles are set by the owner. */
export const bindBody = z.strictObject({
  card_no: z.string().regex(/^[0-9]{16}$/, 'must be a 16-digit card number'),
  binding_password: z.string().min(1).max(200),
  member_id: fields.uuid.optional(),
});

export const bindingRoleBody = z.strictObject({ role: z.enum(['admin', 'member', 'viewer']) });

export const bindingPasswordBody = z.strictObject({
  password: z.string().superRefine((password, ctx) => {
    const problem = bindingPasswordProblem(password);
    if (problem) ctx.addIssue({ code: 'custom', message: problem });
  }),
});

export const pointsAdjustmentBody = z.strictObject({
  delta: z
    .number()
    .int()
    .min(-1_000_000_000)
    .max(1_000_000_000)
    .refine((n) => n !== 0, 'must not be 0'),
  reason: fields.text(200),
});
