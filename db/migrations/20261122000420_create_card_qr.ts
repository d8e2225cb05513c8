import type { Knex } from 'knex';

export async function up(knex: Knex): Promise<void> {
  // The live token of each (card, member): at most one, looked up by its SHA-256.
  await knex.schema.createTable('card_qr_state', (t) => {
    t.uuid('card_id').notNullable().references('member_cards.id').onDelete('CASCADE');
    t.uuid('member_id').notNullable().references('member_profiles.id').onDelete('CASCADE');
    t.text('token_hash').notNullable().unique();
    t.timestamp('issued_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.timestamp('expires_at', { useTz: true }).notNullable();
    t.primary(['card_id', 'member_id']);
    t.index(['expires_at']);
  });
  await knex.schema.createTable('card_qr_history', (t) => {
    t.bigIncrements('id');
    t.uuid('card_id').notNullable();
    t.uuid('member_id').notNullable();
    t.text('token_hash').notNullable().unique();
    t.timestamp('issued_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.timestamp('expires_at', { useTz: true }).notNullable();
    t.timestamp('used_at', { useTz: true });
    t.timestamp('revoked_at', { useTz: true });
    t.text('end_reason');
    t.index(['card_id', 'issued_at']);
    t.index(['issued_at']);
  });
  await knex.raw(`ALTER TABLE card_qr_history ADD CONSTRAINT card_qr_history_end_reason CHECK (end_reason IS NULL OR end_reason IN ('used', 'rotated', 'revoked', 'expired'))`);
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('card_qr_history');
  await knex.schema.dropTable('card_qr_state');
}
