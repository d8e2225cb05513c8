import type { Knex } from 'knex';

// Daily reports (GET /v1/merchant/reports/daily, /v1/reports/daily): local days (SETTLEMENT_TZ)
// rolled up by the report-rollup maintenance job, one row per merchant and day (and
// per merchant, day and hour), plus one row per day (and hour) for the whole platform
// (merchant_id NULL: distinct cards cannot be summed over merchants, nor over hours). Written only by
// that job, never on the payment path. report_rollup_state says how far the rollup reaches: each
// row holds the figures of its period's transactions and failed payments before rolled_until, in
// `time_zone`; a report adds a live aggregate of what came at or after rolled_until.
const FIGURES = `
    payment_count bigint NOT NULL DEFAULT 0,
    payment_minor bigint NOT NULL DEFAULT 0,
    refund_count bigint NOT NULL DEFAULT 0,
    refund_minor bigint NOT NULL DEFAULT 0,
    recharge_count bigint NOT NULL DEFAULT 0,
    recharge_minor bigint NOT NULL DEFAULT 0,
    distinct_cards bigint NOT NULL DEFAULT 0,
    by_method jsonb NOT NULL DEFAULT '{}',
    declines jsonb NOT NULL DEFAULT '{}',
    rolled_at timestamptz NOT NULL DEFAULT now()`;

export async function up(knex: Knex): Promise<void> {
  await knex.raw(`CREATE TABLE report_daily (
    merchant_id uuid REFERENCES merchants (id),
    day date NOT NULL,${FIGURES}
  )`);
  // Two partial unique indexes rather than NULLS NOT DISTINCT (Postgres 15+): each also serves its reads.
  await knex.raw('CREATE UNIQUE INDEX report_daily_merchant_day ON report_daily (merchant_id, day) WHERE merchant_id IS NOT NULL');
  await knex.raw('CREATE UNIQUE INDEX report_daily_platform_day ON report_daily (day) WHERE merchant_id IS NULL');
  // The job recomputes a day for every merchant at once.
  await knex.raw('CREATE INDEX report_daily_day ON report_daily (day)');
  await knex.raw(`CREATE TABLE report_hourly (
    merchant_id uuid REFERENCES merchants (id),
    day date NOT NULL,
    hour smallint NOT NULL CHECK (hour BETWEEN 0 AND 23),${FIGURES}
  )`);
  await knex.raw('CREATE UNIQUE INDEX report_hourly_merchant_hour ON report_hourly (merchant_id, day, hour) WHERE merchant_id IS NOT NULL');
  await knex.raw('CREATE UNIQUE INDEX report_hourly_platform_hour ON report_hourly (day, hour) WHERE merchant_id IS NULL');
  await knex.raw('CREATE INDEX report_hourly_day ON report_hourly (day)');
  await knex.raw(`CREATE TABLE report_rollup_state (
    id boolean PRIMARY KEY DEFAULT true CHECK (id),
    time_zone text NOT NULL,
    rolled_until timestamptz NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
  )`);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw('DROP TABLE report_rollup_state');
  await knex.raw('DROP TABLE report_hourly');
  await knex.raw('DROP TABLE report_daily');
}
