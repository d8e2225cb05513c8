import type { Knex } from 'knex';

/**
 * Replaces a `CHECK (column IN (…))` constraint so that it allows exactly `values`: what the
 * migration of a new operation kind does for each list the registry derives (operations/index.ts
 * REGISTRY_CHECKS). Added NOT VALID, then validated: the validation scans the table without
 * blocking its writes. The values are the code's own constants, quoted here.
 */
export async function setCheckValues(knex: Knex, table: string, constraint: string, column: string, values: readonly string[]): Promise<void> {
  const list = values.map((v) => `'${v.replaceAll("'", "''")}'`).join(', ');
  await knex.raw(`ALTER TABLE ?? DROP CONSTRAINT IF EXISTS ??, ADD CONSTRAINT ?? CHECK (?? IN (${list})) NOT VALID`, [table, constraint, constraint, column]);
  await knex.raw(`ALTER TABLE ?? VALIDATE CONSTRAINT ??`, [table, constraint]);
}
