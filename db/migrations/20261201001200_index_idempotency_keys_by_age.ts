import type { Knex } from 'knex';

// Retention releases idempotency keys older than IDEMPOTENCY_TTL_H, oldest first. Partial: a released
// key leaves the index, which so holds about one TTL of operations however long they are kept.
export const config = { transaction: false };

export async function up(knex: Knex): Promise<void> {
  await knex.raw(`CREATE INDEX CONCURRENTLY IF NOT EXISTS operations_idempotency_by_age ON operations (created_at) WHERE idempotency_key IS NOT NULL`);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw('DROP INDEX CONCURRENTLY IF EXISTS operations_idempotency_by_age');
}
