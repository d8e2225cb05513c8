import type { Knex } from 'knex';

// The before and after of a profile correction (PATCH /v1/members/:id). They are the member's
// personal data, and audit events are hash-chained and never change, so the values live here,
// where erasure deletes them; the audit event holds the change's id, the fields changed and a
// salted digest of these values (so an edited row no longer matches its event).
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('member_profile_changes', (t) => {
    t.uuid('id').primary().defaultTo(knex.raw('gen_random_uuid()'));
    t.uuid('member_id').notNullable().references('member_profiles.id').onDelete('CASCADE');
    t.jsonb('before').notNullable();
    t.jsonb('after').notNullable();
    t.text('salt').notNullable();
    t.uuid('api_key_id');
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.index(['member_id', 'created_at']);
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('member_profile_changes');
}
