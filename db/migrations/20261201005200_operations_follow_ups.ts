import type { Knex } from 'knex';

// Operations that hand on to follow-ups (operations/kind.ts): a transfer's credit on the
// destination card's partition, and the step that ends the transfer on the source's. A follow-up
// names the operation it continues (parent_id); an operation whose apply handed on stays
// `processing` with continued_at set until a follow-up ends it, and no job of its own runs it again.
// Kinds without an amount (a card replacement, a card close) leave amount_minor NULL; every amount
// given is still held to the constraints on it.
export async function up(knex: Knex): Promise<void> {
  await knex.raw('ALTER TABLE operations ADD COLUMN parent_id text REFERENCES operations(id), ADD COLUMN continued_at timestamptz');
  await knex.raw('ALTER TABLE operations ALTER COLUMN amount_minor DROP NOT NULL');
  await knex.raw('CREATE INDEX operations_parent ON operations (parent_id) WHERE parent_id IS NOT NULL');
  await knex.raw(`ALTER TABLE operations ADD CONSTRAINT operations_continued_open CHECK (continued_at IS NULL OR status <> 'queued')`);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw('ALTER TABLE operations DROP CONSTRAINT operations_continued_open');
  await knex.raw('DROP INDEX operations_parent');
  // Only while no operation without an amount exists.
  await knex.raw('ALTER TABLE operations ALTER COLUMN amount_minor SET NOT NULL');
  await knex.raw('ALTER TABLE operations DROP COLUMN continued_at, DROP COLUMN parent_id');
}
