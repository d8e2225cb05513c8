import type { Knex } from 'knex';

// Every operation row is written twice (accepted, then its outcome), and an update that changes
// `status` is never HOT, so each full index on operations costs two entries per operation. Two had
// no reader: operations_card_time and operations_merchant_time (lists of a card's or a merchant's
// operations read transactions; the anomaly rules and the admin lists scan operations_type_newest).
// The one query by card, "is a transfer of this card in flight" (moneyInFlightSql), gets a partial
// index that holds only the transfers waiting on their legs. CONCURRENTLY: no transaction around it.
export const config = { transaction: false };

export async function up(knex: Knex): Promise<void> {
  await knex.raw(`CREATE INDEX CONCURRENTLY IF NOT EXISTS operations_in_flight_by_card ON operations (card_id) WHERE status = 'processing' AND continued_at IS NOT NULL`);
  await knex.raw('DROP INDEX CONCURRENTLY IF EXISTS operations_card_time');
  await knex.raw('DROP INDEX CONCURRENTLY IF EXISTS operations_merchant_time');
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw('CREATE INDEX CONCURRENTLY IF NOT EXISTS operations_merchant_time ON operations (merchant_id, created_at)');
  await knex.raw('CREATE INDEX CONCURRENTLY IF NOT EXISTS operations_card_time ON operations (card_id, created_at)');
  await knex.raw('DROP INDEX CONCURRENTLY IF EXISTS operations_in_flight_by_card');
}
