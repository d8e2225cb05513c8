import type { Knex } from 'knex';

export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('operations', (t) => {
    t.text('id').primary(); // op_…; also the BullMQ job id, so a re-enqueue is never a second job
    t.text('type').notNullable();
    t.text('status').notNullable().defaultTo('queued');
    // Idempotency: the key is unique per principal (merchant, member, or the calling key).
    t.text('principal').notNullable();
    t.text('idempotency_key');
    t.text('request_hash').notNullable();
    t.uuid('api_key_id').notNullable();
    t.text('actor_role').notNullable();
    t.uuid('merchant_id').references('merchants.id');
    t.uuid('member_id').references('member_profiles.id');
    t.uuid('card_id').references('member_cards.id');
    t.smallint('partition').notNullable();
    // The QR is kept as its hash only: plain tokens never reach the database or a job.
    t.text('qr_token_hash');
    t.bigInteger('amount_minor').notNullable();
    t.text('payment_method');
    t.text('original_tx_no');
    t.jsonb('params').notNullable().defaultTo('{}'); // external_order_id, tag, reason
    t.text('error_code');
    t.text('error_message');
    t.jsonb('result');
    t.integer('attempts').notNullable().defaultTo(0);
    t.integer('enqueue_count').notNullable().defaultTo(0);
    t.text('request_id');
    t.text('ip');
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.timestamp('started_at', { useTz: true });
    t.timestamp('completed_at', { useTz: true });
  });
  await knex.raw(`ALTER TABLE operations
    ADD CONSTRAINT operations_type CHECK (type IN ('payment', 'refund', 'recharge')),
    ADD CONSTRAINT operations_status CHECK (status IN ('queued', 'processing', 'succeeded', 'failed')),
    ADD CONSTRAINT operations_amount_positive CHECK (amount_minor > 0),
    ADD CONSTRAINT operations_terminal_complete CHECK ((status IN ('succeeded', 'failed')) = (completed_at IS NOT NULL)),
    ADD CONSTRAINT operations_failed_has_code CHECK ((status = 'failed') = (error_code IS NOT NULL))`);
  await knex.raw(`CREATE UNIQUE INDEX operations_idempotency ON operations (principal, idempotency_key) WHERE idempotency_key IS NOT NULL`);
  // The reconciler's scan: open operations by age.
  await knex.raw(`CREATE INDEX operations_open_by_age ON operations (created_at) WHERE status IN ('queued', 'processing')`);
  await knex.raw(`CREATE INDEX operations_card_time ON operations (card_id, created_at)`);
  await knex.raw(`CREATE INDEX operations_merchant_time ON operations (merchant_id, created_at)`);
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('operations');
}
