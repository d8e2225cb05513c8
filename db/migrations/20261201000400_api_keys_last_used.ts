import type { Knex } from 'knex';

// When a key was last seen (to the minute): an operator revoking keys needs to know which are in use.
export async function up(knex: Knex): Promise<void> {
  await knex.raw('ALTER TABLE api_keys ADD COLUMN last_used_at timestamptz');
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw('ALTER TABLE api_keys DROP COLUMN last_used_at');
}
