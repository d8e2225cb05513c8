import type { Db } from '../knex.js';

/**
 * The values a `CHECK (column IN (…))` constraint allows, read back from the catalog (Postgres
 * prints it as `= ANY (ARRAY['a'::text, …])`); undefined when there is no such constraint.
 */
export async function checkConstraintValues(db: Db, constraint: string): Promise<string[] | undefined> {
  const { rows } = await db.raw<{ rows: { def: string }[] }>(`SELECT pg_get_constraintdef(oid) AS def FROM pg_constraint WHERE conname = ? AND contype = 'c'`, [constraint]);
  if (!rows[0]) return undefined;
  return [...rows[0].def.matchAll(/'((?:[^']|'')*)'/g)].map((m) => m[1]!.replaceAll("''", "'"));
}

/**
 * Constraints that refuse values the code writes: what a migration must add. A constraint that
 * allows more is fine (code older than the schema, during a deploy).
 */
export async function missingCheckValues(db: Db, expected: readonly { constraint: string; values: readonly string[] }[]): Promise<string[]> {
  const problems: string[] = [];
  for (const { constraint, values } of expected) {
    const actual = await checkConstraintValues(db, constraint);
    const missing = values.filter((v) => !actual?.includes(v));
    if (missing.length) problems.push(`${constraint} ${actual ? `does not allow ${missing.join(', ')}` : 'does not exist'}: add a migration (README "Adding an operation kind")`);
  }
  return problems;
}
