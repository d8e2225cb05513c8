import type { Knex } from 'knex';

export async function up(knex: Knex): Promise<void> {
  await knex.raw('CREATE SEQUENCE card_no_seq START 1000000001');
  await knex.schema.createTable('member_cards', (t) => {
    t.uuid('id').primary().defaultTo(knex.raw('gen_random_uuid()'));
    // 16 digits: issuer prefix 880 + type digit + 12-digit sequence.
    t.text('card_no').notNullable().unique();
    t.text('type').notNullable();
    t.text('status').notNullable().defaultTo('active');
    t.uuid('owner_member_id').notNullable().references('member_profiles.id');
    t.bigInteger('balance_minor').notNullable().defaultTo(0);
    t.bigInteger('points').notNullable().defaultTo(0);
    t.smallint('level').notNullable().defaultTo(0);
    t.decimal('fixed_discount', 4, 3);
    t.bigInteger('face_value_minor');
    t.text('binding_password_hash');
    t.timestamp('expires_at', { useTz: true });
    t.timestamps(true, true);
    t.index(['owner_member_id']);
  });
  await knex.raw(`ALTER TABLE member_cards
    ADD CONSTRAINT member_cards_type CHECK (type IN ('standard', 'prepaid', 'corporate', 'voucher')),
    ADD CONSTRAINT member_cards_status CHECK (status IN ('active', 'frozen', 'used', 'expired', 'closed')),
    ADD CONSTRAINT member_cards_balance_nonneg CHECK (balance_minor >= 0),
    ADD CONSTRAINT member_cards_points_nonneg CHECK (points >= 0),
    ADD CONSTRAINT member_cards_fixed_discount_range CHECK (fixed_discount IS NULL OR (fixed_discount >= 0 AND fixed_discount <= 1)),
    ADD CONSTRAINT member_cards_fixed_discount_corporate CHECK (fixed_discount IS NULL OR type = 'corporate'),
    ADD CONSTRAINT member_cards_standard_no_balance CHECK (type <> 'standard' OR balance_minor = 0)`);
  // One standard card per member.
  await knex.raw(`CREATE UNIQUE INDEX member_cards_one_standard ON member_cards (owner_member_id) WHERE type = 'standard'`);
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('member_cards');
  await knex.raw('DROP SEQUENCE card_no_seq');
}
