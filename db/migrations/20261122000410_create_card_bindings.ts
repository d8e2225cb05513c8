import type { Knex } from 'knex';

export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('card_bindings', (t) => {
    t.uuid('id').primary().defaultTo(knex.raw('gen_random_uuid()'));
    t.uuid('card_id').notNullable().references('member_cards.id').onDelete('CASCADE');
    t.uuid('member_id').notNullable().references('member_profiles.id').onDelete('CASCADE');
    t.text('role').notNullable();
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.unique(['card_id', 'member_id']);
    t.index(['member_id']);
  });
  await knex.raw(`ALTER TABLE card_bindings ADD CONSTRAINT card_bindings_role CHECK (role IN ('owner', 'admin', 'member', 'viewer'))`);
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('card_bindings');
}
