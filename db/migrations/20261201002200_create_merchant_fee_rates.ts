import type { Knex } from 'knex';

// Dated fee rates: a rate set by PATCH /v1/merchants/:id applies from the next settlement day (in
// SETTLEMENT_TZ), and a day settles at the rate in force on it, however late it is settled. The
// rate of day d is the row with the greatest effective_from <= d; a merchant without rows settles
// at merchants.fee_rate (it was never changed). The first change also writes the rate it replaces,
// from -infinity, so the days before it keep theirs.
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('merchant_fee_rates', (t) => {
    t.uuid('merchant_id').notNullable().references('merchants.id').onDelete('CASCADE');
    t.date('effective_from').notNullable();
    t.decimal('fee_rate', 5, 4).notNullable();
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.primary(['merchant_id', 'effective_from']);
  });
  await knex.raw(`ALTER TABLE merchant_fee_rates ADD CONSTRAINT merchant_fee_rates_range CHECK (fee_rate >= 0 AND fee_rate <= 1)`);
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('merchant_fee_rates');
}
