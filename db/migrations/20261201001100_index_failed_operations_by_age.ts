import type { Knex } from 'knex';

// Retention finds failed operations past OPERATION_RETENTION_DAYS by age. Partial: succeeded ones stay
// with their transaction, so only failures (written once, when they fail) enter this index.
// CONCURRENTLY, so that building it on a large table does not block payments (no transaction around it).
export const config = { transaction: false };

export async function up(knex: Knex): Promise<void> {
  await knex.raw(`CREATE INDEX CONCURRENTLY IF NOT EXISTS operations_failed_by_age ON operations (created_at) WHERE status = 'failed'`);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw('DROP INDEX CONCURRENTLY IF EXISTS operations_failed_by_age');
}
