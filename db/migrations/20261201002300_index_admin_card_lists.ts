import type { Knex } from 'knex';

// GET /v1/cards (admin): newest first, or of one type or status. Without these, each page sorted
// every card (90 ms at 200,000 cards, ~0.5 s at the bench's 1,000,000; the same to find that there
// is no voucher). A card's writes (balance, points, level) touch none of these columns, so they
// stay HOT updates. CONCURRENTLY: charges lock card rows (no transaction around it).
export const config = { transaction: false };

export async function up(knex: Knex): Promise<void> {
  await knex.raw('CREATE INDEX CONCURRENTLY IF NOT EXISTS member_cards_newest ON member_cards (created_at DESC, id DESC)');
  await knex.raw('CREATE INDEX CONCURRENTLY IF NOT EXISTS member_cards_type_newest ON member_cards (type, created_at DESC, id DESC)');
  await knex.raw('CREATE INDEX CONCURRENTLY IF NOT EXISTS member_cards_status_newest ON member_cards (status, created_at DESC, id DESC)');
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw('DROP INDEX CONCURRENTLY IF EXISTS member_cards_status_newest');
  await knex.raw('DROP INDEX CONCURRENTLY IF EXISTS member_cards_type_newest');
  await knex.raw('DROP INDEX CONCURRENTLY IF EXISTS member_cards_newest');
}
