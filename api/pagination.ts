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

export function decodeCursor(cursor: string | undefined): Cursor | undefined {
  if (!cursor) return undefined;
  try {
    const value = JSON.parse(Buffer.from(cursor, 'base64url').toString()) as Cursor;
    if (typeof value.t !== 'string' || typeof value.id !== 'string' || Number.isNaN(Date.parse(value.t))) throw new Error('shape');
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
