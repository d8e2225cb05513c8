import { z } from 'zod';
import { fields } from '../../domain/validate.js';

/**
 * A rate in [0, 1] given as a number or string with at most `decimals` places, normalized to a
 * string with exactly that many ("0.006" → "0.0060" for 4). Decimal text, never float math.
 */
export function rateInput(decimals: number) {
  const pattern = new RegExp(`^(0(\\.\\d{1,${decimals}})?|1(\\.0{1,${decimals}})?)$`);
  return z.union([z.number(), z.string().max(16)]).transform((value, ctx) => {
    const text = typeof value === 'number' ? String(value) : value;
    if (!pattern.test(text)) {
      ctx.addIssue({ code: 'custom', message: `must be a rate from 0 to 1 with at most ${decimals} decimals` });
      return z.NEVER;
    }
    return Number(text).toFixed(decimals);
  });
}

/** Bodies of state-change routes that take nothing but an optional note for the audit trail. */
export const reasonBody = z.strictObject({ reason: fields.text(200).optional() });
