import type { Knex } from 'knex';

export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('merchants', (t) => {
    t.uuid('id').primary().defaultTo(knex.raw('gen_random_uuid()'));
    t.text('code').notNullable().unique();
    t.text('name').notNullable();
    t.decimal('fee_rate', 5, 4).notNullable().defaultTo('0.0000');
    t.text('settlement_mode').notNullable().defaultTo('t_plus_1');
    t.text('status').notNullable().defaultTo('active');
    t.timestamps(true, true);
  });
  await knex.raw(`ALTER TABLE merchants
    ADD CONSTRAINT merchants_code_format CHECK (code ~ '^[A-Z0-9_-]{3,32}$'),
    ADD CONSTRAINT merchants_fee_rate_range CHECK (fee_rate >= 0 AND fee_rate <= 1),
    ADD CONSTRAINT merchants_settlement_mode CHECK (settlement_mode IN ('t_plus_1')),
    ADD CONSTRAINT merchants_status CHECK (status IN ('active', 'suspended'))`);
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('merchants');
}
