import type { Knex } from 'knex';

// One hash chain per stream (a card partition, or "main" for everything else) instead of one for
// all: appends to a chain take turns until commit, and one global turn capped every worker.
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`ALTER TABLE audit_events ADD COLUMN chain text NOT NULL DEFAULT 'main'`);
  await knex.raw(`CREATE INDEX audit_events_chain_id ON audit_events (chain, id)`);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw(`ALTER TABLE audit_events DROP COLUMN chain`);
}
