import type { Knex } from 'knex';

// Card and transaction numbers are random since 20261201000200: the counters they came from are unused.
export async function up(knex: Knex): Promise<void> {
  await knex.raw('DROP SEQUENCE IF EXISTS card_no_seq');
  await knex.raw('DROP SEQUENCE IF EXISTS tx_no_seq');
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw('CREATE SEQUENCE tx_no_seq');
  await knex.raw('CREATE SEQUENCE card_no_seq START 1000000001');
}
