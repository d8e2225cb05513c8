import { AppError } from '../domain/errors.js';

/** Keyset cursor over (created_at, id): stable under inserts, O(log n) per page. */
export interface Cursor {
  t: string;
  id: string;
}

/** Rows carry `cursor_t` (see db/knex.ts cursorTime) so that the cursor keeps Postgres's microseconds. */
export function encodeCursor(row: { created_at: Date | string; cursor_t?: string; id: string | number }): string {
  const t = row.cursor_t ?? (row.created_at instanceof Date ? row.created_at.toISOString() : row.created_at);
  return Buffer.from(JSON.stringify({ t, id: String(row.id) })).toString('base64url');
}

const CURSOR_ID = {
  uuid: /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i,
  // Operation ids (`op_…`; bench and fault scripts make their own of this alphabet).
  text: /^[A-Za-z0-9_-]{1,100}$/,
};

/** `idType` says what the list's ids look like, so that a forged cursor is a 400 rather than a failed cast in SQL. */
export function decodeCursor(cursor: string | undefined, idType: keyof typeof CURSOR_ID = 'uuid'): Cursor | undefined {
  if (!cursor) return undefined;
  try {
    const value = JSON.parse(Buffer.from(cursor, 'base64url').toString()) as Cursor;
    if (typeof value.t !== 'string' || typeof value.id !== 'string' || Number.isNaN(Date.parse(value.t)) || !CURSOR_ID[idType].test(value.id)) throw new Error('shape');
    return value;
  } catch {
    throw new AppError('VALIDATION_ERROR', 'cursor is not valid', { issues: [{ field: 'cursor', message: 'not a cursor this API issued' }] });
  }
}

/** Builds `{data, next_cursor}` from a page fetched with limit + 1 rows. */
export function page<Row extends { created_at: Date | string; cursor_t?: string; id: string | number }, Out>(rows: Row[], limit: number, map: (row: Row) => Out) {
  const more = rows.length > limit;
  const shown = more ? rows.slice(0, limit) : rows;
  const last = shown[shown.length - 1];
  return { data: shown.map(map), next_cursor: more && last ? encodeCursor(last) : null };
}
