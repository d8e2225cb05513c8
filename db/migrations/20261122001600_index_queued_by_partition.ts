import type { Knex } from 'knex';

// A worker takes the queued operations of its partition, oldest first, into one transaction.
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`CREATE INDEX operations_queued_by_partition ON operations (partition, created_at) WHERE status = 'queued'`);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw('DROP INDEX operations_queued_by_partition');
}
