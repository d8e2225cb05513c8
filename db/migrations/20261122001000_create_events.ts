import type { Knex } from 'knex';

export async function up(knex: Knex): Promise<void> {
  // Outbox: written in the business transaction. The per-merchant sequence is given by the relay,
  // which runs one at a time, so that payments of one merchant never queue on a counter row.
  await knex.schema.createTable('events', (t) => {
    t.text('id').primary(); // evt_…
    t.uuid('merchant_id').references('merchants.id');
    t.bigInteger('sequence');
    t.text('type').notNullable();
    t.jsonb('data').notNullable();
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.timestamp('relayed_at', { useTz: true });
    t.unique(['merchant_id', 'sequence']);
  });
  await knex.raw(`CREATE INDEX events_unrelayed ON events (created_at) WHERE relayed_at IS NULL`);
  await knex.raw(`CREATE INDEX events_merchant_type ON events (merchant_id, type, sequence)`);
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('events');
}
