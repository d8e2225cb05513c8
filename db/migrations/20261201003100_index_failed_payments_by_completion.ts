import type { Knex } from 'knex';

// Declines in the platform-wide report (failed payments by error code, on the local day they were
// decided) and the rollup's first-activity lookup read failed payments by completed_at across all
// merchants; operations_merchant_failed leads with merchant_id. Partial: a row enters it once, when
// its payment fails. CONCURRENTLY, so that building it on a large table does not block payments.
export const config = { transaction: false };

export async function up(knex: Knex): Promise<void> {
  await knex.raw(`CREATE INDEX CONCURRENTLY IF NOT EXISTS operations_failed_payments_completed ON operations (completed_at) WHERE status = 'failed' AND type = 'payment'`);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw('DROP INDEX CONCURRENTLY IF EXISTS operations_failed_payments_completed');
}
