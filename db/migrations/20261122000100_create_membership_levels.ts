import type { Knex } from 'knex';

export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('membership_levels', (t) => {
    t.smallint('level').primary();
    t.text('name').notNullable();
    t.text('local_name').notNullable();
    t.bigInteger('min_points').notNullable().unique();
    t.decimal('discount_rate', 4, 3).notNullable();
    t.timestamp('updated_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
  });
  await knex.raw(`ALTER TABLE membership_levels
    ADD CONSTRAINT membership_levels_rate_range CHECK (discount_rate >= 0 AND discount_rate <= 1),
    ADD CONSTRAINT membership_levels_points_nonneg CHECK (min_points >= 0)`);
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('membership_levels');
}
