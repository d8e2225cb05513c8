import type { Knex } from 'knex';
import { checkConstraintValues } from './queries/check-constraints.js';

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

/**
 * Adds `values` to what the constraint allows now (setCheckValues with the union): a kind's
 * migration that adds only its own values, whatever other kinds' migrations (on other branches,
 * in either order) added before it.
 */
export async function addCheckValues(knex: Knex, table: string, constraint: string, column: string, values: readonly string[]): Promise<void> {
  const current = (await checkConstraintValues(knex, constraint)) ?? [];
  await setCheckValues(knex, table, constraint, column, [...new Set([...current, ...values])]);
}

/** Takes `values` out of what the constraint allows (the `down` of addCheckValues). */
export async function removeCheckValues(knex: Knex, table: string, constraint: string, column: string, values: readonly string[]): Promise<void> {
  const current = (await checkConstraintValues(knex, constraint)) ?? [];
  await setCheckValues(knex, table, constraint, column, current.filter((v) => !values.includes(v)));
}
