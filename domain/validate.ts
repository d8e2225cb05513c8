import { z } from 'zod';
import { AppError } from './errors.js';

/**
 * Parses a request part with a strict zod schema. Unknown fields are named in the error, so a
 * client that sends `balance` learns that it is not accepted rather than seeing it ignored.
 */
export function parse<T extends z.ZodType>(schema: T, input: unknown, where = 'body'): z.output<T> {
  const result = schema.safeParse(input ?? {});
  if (result.success) return result.data;
  const unknownFields = result.error.issues.flatMap((i) => (i.code === 'unrecognized_keys' ? i.keys.map((k) => [...i.path, k].join('.')) : []));
  const issues = result.error.issues
    .filter((i) => i.code !== 'unrecognized_keys')
    .map((i) => ({ field: i.path.join('.') || where, message: i.message }));
  const message = unknownFields.length
    ? `Unknown field(s) in ${where}: ${unknownFields.join(', ')}`
    : `Invalid ${where}: ${issues.map((i) => `${i.field}: ${i.message}`).join('; ')}`;
  throw new AppError('VALIDATION_ERROR', message, { ...(unknownFields.length ? { unknown_fields: unknownFields } : {}), issues });
}

const AMOUNT_EXPECTED = 'an amount such as 299 or "299.00" (more than 0, at most 2 decimals)';

/** A real instant Postgres can hold: 0000-01-01 and 2026-02-30 pass the ISO pattern, not this. */
function isRealInstant(text: string): boolean {
  const date = new Date(text);
  if (Number.isNaN(date.getTime())) return false;
  const [year, month, day] = text.slice(0, 10).split('-').map(Number) as [number, number, number];
  // The calendar date as written must exist (Date rolls 02-30 over into March).
  const calendar = new Date(Date.UTC(year, month - 1, day));
  return year >= 1970 && year <= 9999 && calendar.getUTCMonth() === month - 1 && calendar.getUTCDate() === day;
}

/** Reusable field schemas. */
export const fields = {
  amount: z.union([z.number(), z.string().max(32)], { error: (issue) => (issue.input === undefined ? `is required: ${AMOUNT_EXPECTED}` : `must be ${AMOUNT_EXPECTED}`) }),
  uuid: z.uuid(),
  /** `tag`: a flat object of at most 20 keys and 2 KB of JSON. */
  tag: z
    .record(z.string().max(64), z.union([z.string().max(512), z.number(), z.boolean(), z.null()]))
    .refine((t) => Object.keys(t).length <= 20, 'tag may have at most 20 keys')
    .refine((t) => Buffer.byteLength(JSON.stringify(t)) <= 2048, 'tag may be at most 2 KB'),
  text: (max: number) => z.string().trim().min(1).max(max),
  isoTime: z.iso.datetime({ offset: true }).refine(isRealInstant, 'must be a real date and time from 1970 to 9999'),
};

/** `?limit=&cursor=` of every list (API.md "Lists"). */
export const listQuery = {
  limit: z.coerce.number().int().min(1).max(200).default(50),
  cursor: z.string().max(200).optional(),
};

/** A 400 about one field, in the shape `parse` gives for schema failures. */
export function fieldError(field: string, message: string): AppError {
  return new AppError('VALIDATION_ERROR', `Invalid body: ${field}: ${message}`, { issues: [{ field, message }] });
}
