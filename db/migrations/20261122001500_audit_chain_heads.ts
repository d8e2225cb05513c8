import type { Knex } from 'knex';

// Where each audit chain ends. Locking this row is an append's turn on its chain: a row lock
// hands over the newest committed head in the same statement that waits for it, which an
// advisory lock followed by a read of audit_events could only do in two.
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`CREATE TABLE audit_chain_heads (chain text PRIMARY KEY, last_id bigint NOT NULL, hash text NOT NULL)`);
  await knex.raw(`INSERT INTO audit_chain_heads (chain, last_id, hash) SELECT DISTINCT ON (chain) chain, id, hash FROM audit_events ORDER BY chain, id DESC`);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw(`DROP TABLE audit_chain_heads`);
}
