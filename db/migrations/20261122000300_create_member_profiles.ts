import type { Knex } from 'knex';

export async function up(knex: Knex): Promise<void> {
  await knex.raw('CREATE SEQUENCE member_no_seq START 100001');
  await knex.schema.createTable('member_profiles', (t) => {
    t.uuid('id').primary().defaultTo(knex.raw('gen_random_uuid()'));
    t.text('member_no').notNullable().unique().defaultTo(knex.raw(`'M' || nextval('member_no_seq')`));
    t.text('name').notNullable();
    t.text('phone');
    t.text('email');
    t.text('status').notNullable().defaultTo('active');
    t.timestamp('erased_at', { useTz: true });
    t.timestamps(true, true);
  });
  await knex.raw(`ALTER TABLE member_profiles ADD CONSTRAINT member_profiles_status CHECK (status IN ('active', 'suspended', 'erased'))`);
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('member_profiles');
  await knex.raw('DROP SEQUENCE member_no_seq');
}
