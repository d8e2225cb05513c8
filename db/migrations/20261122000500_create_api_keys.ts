import type { Knex } from 'knex';

export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('api_keys', (t) => {
    t.uuid('id').primary().defaultTo(knex.raw('gen_random_uuid()'));
    t.text('role').notNullable();
    t.text('key_hash').notNullable().unique();
    t.text('prefix').notNullable();
    t.text('name');
    t.uuid('merchant_id').references('merchants.id');
    t.uuid('member_id').references('member_profiles.id');
    t.text('status').notNullable().defaultTo('active');
    t.timestamp('expires_at', { useTz: true });
    t.timestamp('revoked_at', { useTz: true });
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.index(['merchant_id']);
    t.index(['member_id']);
  });
  await knex.raw(`ALTER TABLE api_keys
    ADD CONSTRAINT api_keys_role CHECK (role IN ('admin', 'merchant', 'app', 'member')),
    ADD CONSTRAINT api_keys_status CHECK (status IN ('active', 'suspended', 'revoked')),
    ADD CONSTRAINT api_keys_merchant_bound CHECK ((role = 'merchant') = (merchant_id IS NOT NULL)),
    ADD CONSTRAINT api_keys_member_bound CHECK ((role = 'member') = (member_id IS NOT NULL))`);
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('api_keys');
}
