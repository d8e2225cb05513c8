import type { Knex } from 'knex';

export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('settlements', (t) => {
    t.uuid('id').primary().defaultTo(knex.raw('gen_random_uuid()'));
    t.uuid('merchant_id').notNullable().references('merchants.id');
    t.date('period_date').notNullable(); // the merchant's local day (SETTLEMENT_TZ)
    t.timestamp('period_start', { useTz: true }).notNullable();
    t.timestamp('period_end', { useTz: true }).notNullable();
    t.bigInteger('gross_minor').notNullable();
    t.bigInteger('refund_minor').notNullable();
    t.bigInteger('fee_minor').notNullable();
    t.bigInteger('net_minor').notNullable();
    t.integer('payment_count').notNullable();
    t.integer('refund_count').notNullable();
    t.text('status').notNullable().defaultTo('pending');
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.timestamp('confirmed_at', { useTz: true });
    t.timestamp('paid_at', { useTz: true });
    t.unique(['merchant_id', 'period_start']);
    t.index(['period_date']);
  });
  await knex.raw(`ALTER TABLE settlements
    ADD CONSTRAINT settlements_status CHECK (status IN ('pending', 'confirmed', 'paid')),
    ADD CONSTRAINT settlements_period CHECK (period_end > period_start),
    ADD CONSTRAINT settlements_net CHECK (net_minor = gross_minor - refund_minor - fee_minor),
    ADD CONSTRAINT settlements_nonneg CHECK (gross_minor >= 0 AND refund_minor >= 0 AND fee_minor >= 0 AND payment_count >= 0 AND refund_count >= 0)`);
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('settlements');
}
