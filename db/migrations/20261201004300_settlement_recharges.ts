import type { Knex } from 'knex';

/**
 * Till top-ups (POST /v1/recharges) in the merchant's settlement: the merchant holds that cash, so
 * net = gross − refunds − fee − recharges. Settlements made before have no till top-ups (0).
 */
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`ALTER TABLE settlements
    ADD COLUMN recharge_minor bigint NOT NULL DEFAULT 0,
    ADD COLUMN recharge_count integer NOT NULL DEFAULT 0,
    DROP CONSTRAINT settlements_net,
    ADD CONSTRAINT settlements_net CHECK (net_minor = gross_minor - refund_minor - fee_minor - recharge_minor),
    ADD CONSTRAINT settlements_recharges_nonneg CHECK (recharge_minor >= 0 AND recharge_count >= 0)`);
}

export async function down(knex: Knex): Promise<void> {
  // Only while no settlement holds till top-ups: their net would no longer add up.
  await knex.raw(`ALTER TABLE settlements
    DROP CONSTRAINT settlements_recharges_nonneg,
    DROP CONSTRAINT settlements_net,
    ADD CONSTRAINT settlements_net CHECK (net_minor = gross_minor - refund_minor - fee_minor),
    DROP COLUMN recharge_count,
    DROP COLUMN recharge_minor`);
}
