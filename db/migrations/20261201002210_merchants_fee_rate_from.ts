import type { Knex } from 'knex';

// What a merchant shows of its dated rates: fee_rate is the rate last set, fee_rate_from the
// settlement day it applies from (null: from the start) and previous_fee_rate the one before it.
// merchant_fee_rates stays the record settlement reads. Nullable, no default: no table rewrite.
export async function up(knex: Knex): Promise<void> {
  await knex.raw('ALTER TABLE merchants ADD COLUMN fee_rate_from date, ADD COLUMN previous_fee_rate numeric(5, 4)');
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw('ALTER TABLE merchants DROP COLUMN fee_rate_from, DROP COLUMN previous_fee_rate');
}
