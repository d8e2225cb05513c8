import type { Knex } from 'knex';

export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('audit_events', (t) => {
    t.bigIncrements('id');
    t.text('actor_type').notNullable(); // api_key, system
    t.text('actor_id');
    t.text('role');
    t.text('action').notNullable();
    t.text('object_type').notNullable();
    t.text('object_id');
    t.jsonb('context').notNullable().defaultTo('{}');
    t.text('request_id');
    t.text('ip');
    t.timestamp('created_at', { useTz: true }).notNullable();
    t.text('prev_hash').notNullable();
    t.text('hash').notNullable().unique();
    t.index(['object_type', 'object_id']);
    t.index(['created_at']);
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('audit_events');
}
