import type { Knex } from 'knex';

// A recharge from the member-app backend names the payment its provider confirmed; the same
// (method, reference) credits a card once. Held on the operation, so a second request with it is
// refused when it is accepted, before any job runs.
export async function up(knex: Knex): Promise<void> {
  await knex.raw('ALTER TABLE operations ADD COLUMN payment_reference text');
  await knex.raw(`CREATE UNIQUE INDEX operations_payment_reference ON operations (payment_method, payment_reference) WHERE payment_reference IS NOT NULL`);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw('DROP INDEX operations_payment_reference');
  await knex.raw('ALTER TABLE operations DROP COLUMN payment_reference');
}
