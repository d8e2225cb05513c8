import type { Knex } from 'knex';

// Backfill kept apart from the schema change (CONVENTIONS.md 7): the level table of DESIGN.md.
const LEVELS = [
  { level: 0, name: 'regular', local_name: '普通會員', min_points: 0, discount_rate: '1.000' },
  { level: 1, name: 'silver', local_name: '銀卡會員', min_points: 1000, discount_rate: '0.950' },
  { level: 2, name: 'gold', local_name: '金卡會員', min_points: 5000, discount_rate: '0.900' },
  { level: 3, name: 'diamond', local_name: '鑽石會員', min_points: 10000, discount_rate: '0.850' },
];

export async function up(knex: Knex): Promise<void> {
  await knex('membership_levels').insert(LEVELS).onConflict('level').ignore();
}

export async function down(knex: Knex): Promise<void> {
  await knex('membership_levels').del();
}
