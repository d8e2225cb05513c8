import type { Knex } from 'knex';

// GET /v1/operations (admin, the on-call view). By status, the partial indexes already there serve
// it (operations_open_by_age for queued and processing, operations_failed_by_age for failed). What
// had no index was everything else: all operations newest first (a sort of the whole table on
// every page), and of one type. One index serves both: a type's newest directly, and all types'
// newest as a merge of one short scan per type (db/queries/admin-lists.ts). Operations are the
// hottest table (an insert and two updates each), so one index rather than two. CONCURRENTLY: no
// transaction around it.
export const config = { transaction: false };

export async function up(knex: Knex): Promise<void> {
  await knex.raw('CREATE INDEX CONCURRENTLY IF NOT EXISTS operations_type_newest ON operations (type, created_at DESC, id DESC)');
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw('DROP INDEX CONCURRENTLY IF EXISTS operations_type_newest');
}
