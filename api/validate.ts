import { z } from 'zod';
import { AppError } from '../domain/errors.js';

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

/** Reusable field schemas. */
export const fields = {
  amount: z.union([z.number(), z.string().max(32)]),
  uuid: z.uuid(),
  /** `tag`: a flat object of at most 20 keys and 2 KB of JSON. */
  tag: z
    .record(z.string().max(64), z.union([z.string().max(512), z.number(), z.boolean(), z.null()]))
    .refine((t) => Object.keys(t).length <= 20, 'tag may have at most 20 keys')
    .refine((t) => Buffer.byteLength(JSON.stringify(t)) <= 2048, 'tag may be at most 2 KB'),
  text: (max: number) => z.string().trim().min(1).max(max),
  isoTime: z.iso.datetime({ offset: true }),
};

/** `?limit=&cursor=` of every list (API.md "Lists"). */
export const listQuery = {
  limit: z.coerce.number().int().min(1).max(200).default(50),
  cursor: z.string().max(200).optional(),
};
