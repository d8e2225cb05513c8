import type { Knex } from 'knex';

// Settlement and anomaly detection scan one period of all merchants' transactions by time.
export async function up(knex: Knex): Promise<void> {
  await knex.raw('CREATE INDEX transactions_created_at ON transactions (created_at)');
  await knex.raw(`CREATE INDEX operations_merchant_failed ON operations (merchant_id, completed_at) WHERE status = 'failed'`);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw('DROP INDEX operations_merchant_failed');
  await knex.raw('DROP INDEX transactions_created_at');
}
