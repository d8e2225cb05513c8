import type { Knex } from 'knex';

export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('risk_alerts', (t) => {
    t.uuid('id').primary().defaultTo(knex.raw('gen_random_uuid()'));
    t.text('rule').notNullable();
    t.text('subject_type').notNullable();
    t.text('subject_id').notNullable();
    t.timestamp('window_start', { useTz: true }).notNullable();
    t.text('severity').notNullable().defaultTo('warning');
    t.jsonb('details').notNullable().defaultTo('{}');
    t.text('status').notNullable().defaultTo('open');
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.timestamp('resolved_at', { useTz: true });
    t.uuid('resolved_by');
    t.text('resolution_note');
    t.unique(['rule', 'subject_type', 'subject_id', 'window_start']); // dedup per rule, subject, window
    t.index(['status', 'created_at']);
  });
  await knex.raw(`ALTER TABLE risk_alerts
    ADD CONSTRAINT risk_alerts_status CHECK (status IN ('open', 'resolved')),
    ADD CONSTRAINT risk_alerts_severity CHECK (severity IN ('info', 'warning', 'critical'))`);
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('risk_alerts');
}
