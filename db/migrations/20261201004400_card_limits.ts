import type { Knex } from 'knex';

/**
 * A card's own spending limits (PUT /v1/cards/:id/limits); null means the platform default
 * (CARD_SINGLE_PAYMENT_LIMIT, CARD_DAILY_SPEND_LIMIT, CARD_DAILY_PAYMENT_COUNT). Nullable columns
 * without a default: adding them rewrites nothing.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`ALTER TABLE member_cards
    ADD COLUMN single_payment_limit_minor bigint,
    ADD COLUMN daily_spend_limit_minor bigint,
    ADD COLUMN daily_payment_count integer,
    ADD CONSTRAINT member_cards_limits_positive CHECK (single_payment_limit_minor > 0 AND daily_spend_limit_minor > 0 AND daily_payment_count > 0)`);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw(`ALTER TABLE member_cards
    DROP CONSTRAINT member_cards_limits_positive,
    DROP COLUMN daily_payment_count,
    DROP COLUMN daily_spend_limit_minor,
    DROP COLUMN single_payment_limit_minor`);
}
