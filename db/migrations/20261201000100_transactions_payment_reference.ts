import type { Knex } from 'knex';

// The payment provider's reference for a voucher bought through the member app: one reference
// pays for one voucher, per payment method (recharges hold theirs on the operation).
export async function up(knex: Knex): Promise<void> {
  await knex.raw('ALTER TABLE transactions ADD COLUMN payment_reference text');
  await knex.raw(`CREATE UNIQUE INDEX transactions_payment_reference ON transactions (payment_method, payment_reference) WHERE payment_reference IS NOT NULL`);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw('DROP INDEX transactions_payment_reference');
  await knex.raw('ALTER TABLE transactions DROP COLUMN payment_reference');
}
