import type { Knex } from 'knex';

// Retention removes outbox events relayed more than OUTBOX_RETENTION_DAYS ago, oldest first.
export const config = { transaction: false };

export async function up(knex: Knex): Promise<void> {
  await knex.raw(`CREATE INDEX CONCURRENTLY IF NOT EXISTS events_relayed_at ON events (relayed_at) WHERE relayed_at IS NOT NULL`);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw('DROP INDEX CONCURRENTLY IF EXISTS events_relayed_at');
}
