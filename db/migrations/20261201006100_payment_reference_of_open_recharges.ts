import type { Knex } from 'knex';

// A payment reference is used by a recharge that may still credit it (queued, processing, waiting
// for approval) or did (succeeded). One that failed (a frozen card, say) credited nothing: the
// money is still the member's to credit, so a later recharge may name the same reference.
// The index leaves out failed and rejected operations; CONCURRENTLY: no transaction around it.
export const config = { transaction: false };

export async function up(knex: Knex): Promise<void> {
  await knex.raw(
    `CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS operations_payment_reference_open ON operations (payment_method, payment_reference) WHERE payment_reference IS NOT NULL AND status NOT IN ('failed', 'rejected')`,
  );
  await knex.raw('DROP INDEX CONCURRENTLY IF EXISTS operations_payment_reference');
  await knex.raw('ALTER INDEX operations_payment_reference_open RENAME TO operations_payment_reference');
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw('DROP INDEX CONCURRENTLY IF EXISTS operations_payment_reference');
  await knex.raw(`CREATE UNIQUE INDEX CONCURRENTLY operations_payment_reference ON operations (payment_method, payment_reference) WHERE payment_reference IS NOT NULL`);
}
