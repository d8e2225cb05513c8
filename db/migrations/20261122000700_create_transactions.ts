import type { Knex } from 'knex';

export async function up(knex: Knex): Promise<void> {
  await knex.raw('CREATE SEQUENCE tx_no_seq');
  await knex.schema.createTable('transactions', (t) => {
    t.uuid('id').primary().defaultTo(knex.raw('gen_random_uuid()'));
    t.text('tx_no').notNullable().unique();
    t.text('type').notNullable();
    t.text('status').notNullable().defaultTo('completed');
    // One transaction per operation; null only for rows no operation made (a voucher's face value at issue).
    t.text('operation_id').unique().references('operations.id');
    t.uuid('card_id').notNullable().references('member_cards.id');
    t.uuid('member_id').references('member_profiles.id'); // who paid / recharged
    t.uuid('merchant_id').references('merchants.id');
    t.uuid('original_tx_id').references('transactions.id');
    t.bigInteger('raw_amount_minor').notNullable();
    t.decimal('discount_rate', 4, 3).notNullable().defaultTo('1.000');
    t.bigInteger('final_amount_minor').notNullable();
    t.bigInteger('refunded_amount_minor').notNullable().defaultTo(0);
    t.bigInteger('points_earned').notNullable().defaultTo(0);
    t.bigInteger('points_clawed_back').notNullable().defaultTo(0);
    t.boolean('via_balance').notNullable().defaultTo(false); // moved stored balance (vs. an external method)
    t.text('payment_method');
    t.text('external_order_id');
    t.jsonb('tag');
    t.text('reason');
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
  });
  await knex.raw(`ALTER TABLE transactions
    ADD CONSTRAINT transactions_type CHECK (type IN ('payment', 'refund', 'recharge')),
    ADD CONSTRAINT transactions_status CHECK (status IN ('completed', 'partially_refunded', 'refunded')),
    ADD CONSTRAINT transactions_amounts CHECK (raw_amount_minor > 0 AND final_amount_minor >= 0),
    ADD CONSTRAINT transactions_refunded_le_final CHECK (refunded_amount_minor >= 0 AND refunded_amount_minor <= final_amount_minor),
    ADD CONSTRAINT transactions_rate_range CHECK (discount_rate >= 0 AND discount_rate <= 1),
    ADD CONSTRAINT transactions_points_nonneg CHECK (points_earned >= 0 AND points_clawed_back >= 0),
    ADD CONSTRAINT transactions_refund_has_original CHECK ((type = 'refund') = (original_tx_id IS NOT NULL)),
    ADD CONSTRAINT transactions_merchant_for_money_out CHECK (type = 'recharge' OR merchant_id IS NOT NULL),
    ADD CONSTRAINT transactions_operation_or_voucher_issue CHECK (operation_id IS NOT NULL OR (type = 'recharge' AND payment_method = 'voucher_issue'))`);
  await knex.raw(`CREATE INDEX transactions_card_time ON transactions (card_id, created_at DESC, id DESC)`);
  await knex.raw(`CREATE INDEX transactions_member_time ON transactions (member_id, created_at DESC, id DESC)`);
  await knex.raw(`CREATE INDEX transactions_merchant_time ON transactions (merchant_id, created_at DESC, id DESC)`);
  await knex.raw(`CREATE INDEX transactions_original ON transactions (original_tx_id) WHERE original_tx_id IS NOT NULL`);
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('transactions');
  await knex.raw('DROP SEQUENCE tx_no_seq');
}
