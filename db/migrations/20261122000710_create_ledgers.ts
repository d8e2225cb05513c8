import type { Knex } from 'knex';

export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('balance_ledger', (t) => {
    t.bigIncrements('id');
    t.uuid('card_id').notNullable().references('member_cards.id');
    t.uuid('transaction_id').notNullable().references('transactions.id');
    t.bigInteger('delta_minor').notNullable();
    t.bigInteger('balance_after_minor').notNullable();
    t.text('reason').notNullable();
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.index(['card_id', 'id']);
    t.unique(['transaction_id']); // one balance movement per transaction
  });
  await knex.raw(`ALTER TABLE balance_ledger
    ADD CONSTRAINT balance_ledger_nonzero CHECK (delta_minor <> 0),
    ADD CONSTRAINT balance_ledger_after_nonneg CHECK (balance_after_minor >= 0),
    ADD CONSTRAINT balance_ledger_reason CHECK (reason IN ('payment', 'refund', 'recharge'))`);

  await knex.schema.createTable('point_ledger', (t) => {
    t.bigIncrements('id');
    t.uuid('card_id').notNullable().references('member_cards.id');
    t.uuid('transaction_id').references('transactions.id');
    t.bigInteger('delta').notNullable();
    t.bigInteger('points_after').notNullable();
    t.text('reason').notNullable();
    t.text('note');
    t.uuid('actor_key_id');
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.index(['card_id', 'id']);
  });
  await knex.raw(`ALTER TABLE point_ledger
    ADD CONSTRAINT point_ledger_nonzero CHECK (delta <> 0),
    ADD CONSTRAINT point_ledger_after_nonneg CHECK (points_after >= 0),
    ADD CONSTRAINT point_ledger_reason CHECK (reason IN ('earn', 'clawback', 'adjustment')),
    ADD CONSTRAINT point_ledger_tx_or_adjustment CHECK ((reason = 'adjustment') = (transaction_id IS NULL))`);
  await knex.raw(`CREATE UNIQUE INDEX point_ledger_one_per_tx ON point_ledger (transaction_id) WHERE transaction_id IS NOT NULL`);
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('point_ledger');
  await knex.schema.dropTable('balance_ledger');
}
