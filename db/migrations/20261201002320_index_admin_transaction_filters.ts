import type { Knex } from 'knex';

// GET /v1/transactions?type=&status= (admin), over all merchants. By type, a full index: a type's
// rows can come in long runs (the bench's newest 1,000,000 rows are recharges), and a walk through
// the newest-first index past them to 50 payments took 0.5 s at 200,000; it costs one entry per
// transaction. By status, a partial one: rows are written `completed`, so the newest-first index
// finds completed ones at once; the few others (refunded, partly refunded) enter this index when a
// refund changes them, and would otherwise take a walk through every transaction to find, or to
// find absent. The admin list is planned with its filter values (not prepared), so the planner can
// see that `status = 'refunded'` is inside `status <> 'completed'`. CONCURRENTLY: no transaction
// around it.
export const config = { transaction: false };

export async function up(knex: Knex): Promise<void> {
  await knex.raw('CREATE INDEX CONCURRENTLY IF NOT EXISTS transactions_type_newest ON transactions (type, created_at DESC, id DESC)');
  await knex.raw(`CREATE INDEX CONCURRENTLY IF NOT EXISTS transactions_status_newest ON transactions (status, created_at DESC, id DESC) WHERE status <> 'completed'`);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw('DROP INDEX CONCURRENTLY IF EXISTS transactions_status_newest');
  await knex.raw('DROP INDEX CONCURRENTLY IF EXISTS transactions_type_newest');
}
