import { addDays, type ReportFigures } from '../../domain/report.js';
import type { Db } from '../knex.js';

/**
 * Daily report SQL: one aggregate of transactions and failed payment operations by local day or
 * hour (SETTLEMENT_TZ), used both live (the days not rolled up yet) and by the rollup job (to fill
 * report_daily / report_hourly for a closed day), so that the two can never count differently.
 *
 * What a period holds (docs in README "Daily reports"): rows are counted on the local day and hour
 * they were written by the worker (transactions.created_at, operations.completed_at of a failed
 * payment: both the worker transaction's now()). Nothing later changes a row's figures: a refund
 * counts on its own day, not on its payment's, so a closed day stays closed.
 * - payments: type payment, Σ final_amount (what the card paid, after discount), by payment_method;
 * - refunds: type refund, Σ final_amount;
 * - recharges at the till: type recharge with a merchant_id (top-ups a merchant took at its till);
 * - distinct_cards: cards with a payment in the period;
 * - declines: payment operations that failed, by error_code.
 * Only rows with a merchant count (every payment and refund has one).
 */

/** A report for one merchant, or for the whole platform. */
export type ReportScope = { merchantId: string } | { platform: true };
type AggregateScope = ReportScope | 'every';
export type Bucket = 'day' | 'hour';

export interface ReportRow extends ReportFigures {
  /** Null on a platform row. */
  merchant_id: string | null;
  day: string;
  hour: number | null;
}

const NO_MERCHANT = '00000000-0000-0000-0000-000000000000';

/** `:name` placeholders to knex's positional `?`, each occurrence bound again (casts `::type` are left alone). */
function named(sql: string, values: Record<string, unknown>): [string, unknown[]] {
  const bindings: unknown[] = [];
  const text = sql.replace(/(?<![:\w]):([a-z_]+)\b/g, (_m, name: string) => {
    if (!(name in values)) throw new RangeError(`no value for :${name}`);
    bindings.push(values[name]);
    return '?';
  });
  return [text, bindings];
}

const START = `(CAST(:from_day AS date))::timestamp AT TIME ZONE :tz`;
const END = `(CAST(:until_day AS date))::timestamp AT TIME ZONE :tz`;
const FIGURE_COLUMNS = ['payment_count', 'payment_minor', 'refund_count', 'refund_minor', 'recharge_count', 'recharge_minor', 'distinct_cards'] as const;

/**
 * The aggregate of [from_day, until_day) (local days in :tz) by merchant (or platform) and day or
 * hour. `every` gives one row per merchant and period plus the platform's (merchant_id NULL), from
 * one scan (GROUPING SETS); the platform row is not a sum of the merchants' (distinct cards).
 */
function aggregateSql(bucket: Bucket, scope: AggregateScope): string {
  const hourOf = (column: string) => (bucket === 'hour' ? `extract(hour FROM ${column} AT TIME ZONE :tz)::smallint` : 'NULL::smallint');
  const only = (alias: string) => (scope !== 'every' && 'merchantId' in scope ? `AND ${alias}.merchant_id = CAST(:merchant AS uuid)` : '');
  // Grouping keys carry no NULLs, so that the parts below join on plain equality (hash joins).
  const key = scope === 'every' || 'merchantId' in scope ? `coalesce(merchant_id, '${NO_MERCHANT}'::uuid) AS m, day, coalesce(hour, -1) AS h` : `'${NO_MERCHANT}'::uuid AS m, day, coalesce(hour, -1) AS h`;
  const groups = (extra = '') => (scope === 'every' ? `GROUPING SETS ((merchant_id, day, hour${extra}), (day, hour${extra}))` : 'merchantId' in scope ? `merchant_id, day, hour${extra}` : `day, hour${extra}`);
  return `WITH tx AS MATERIALIZED (
      SELECT t.merchant_id, (t.created_at AT TIME ZONE :tz)::date AS day, ${hourOf('t.created_at')} AS hour, t.type,
             coalesce(t.payment_method, 'unknown') AS method, t.card_id, t.final_amount_minor AS minor
        FROM transactions t
       WHERE t.created_at >= ${START} AND t.created_at < ${END}
         AND t.type IN ('payment', 'refund', 'recharge') AND t.merchant_id IS NOT NULL ${only('t')}
    ), totals AS (
      SELECT ${key},
             count(*) FILTER (WHERE type = 'payment') AS payment_count,
             coalesce(sum(minor) FILTER (WHERE type = 'payment'), 0)::bigint AS payment_minor,
             count(*) FILTER (WHERE type = 'refund') AS refund_count,
             coalesce(sum(minor) FILTER (WHERE type = 'refund'), 0)::bigint AS refund_minor,
             count(*) FILTER (WHERE type = 'recharge') AS recharge_count,
             coalesce(sum(minor) FILTER (WHERE type = 'recharge'), 0)::bigint AS recharge_minor,
             count(DISTINCT card_id) FILTER (WHERE type = 'payment') AS distinct_cards
        FROM tx GROUP BY ${groups()}
    ), methods AS (
      SELECT m, day, h, jsonb_object_agg(method, minor) AS by_method
        FROM (SELECT ${key}, method, sum(minor)::bigint AS minor FROM tx WHERE type = 'payment' GROUP BY ${groups(', method')}) x
       GROUP BY m, day, h
    ), declined AS (
      SELECT m, day, h, jsonb_object_agg(error_code, n) AS declines
        FROM (SELECT ${key}, error_code, count(*) AS n
                FROM (SELECT o.merchant_id, (o.completed_at AT TIME ZONE :tz)::date AS day, ${hourOf('o.completed_at')} AS hour, o.error_code
                        FROM operations o
                       WHERE o.type = 'payment' AND o.status = 'failed' AND o.completed_at >= ${START} AND o.completed_at < ${END}
                         AND o.merchant_id IS NOT NULL ${only('o')}) f
               GROUP BY ${groups(', error_code')}) x
       GROUP BY m, day, h
    )
    SELECT nullif(k.m, '${NO_MERCHANT}'::uuid) AS merchant_id, k.day, nullif(k.h, -1)::smallint AS hour,
           ${FIGURE_COLUMNS.map((c) => `coalesce(t.${c}, 0)::bigint AS ${c}`).join(', ')},
           coalesce(me.by_method, '{}'::jsonb) AS by_method, coalesce(d.declines, '{}'::jsonb) AS declines
      FROM (SELECT m, day, h FROM totals UNION SELECT m, day, h FROM declined) k
      LEFT JOIN totals t ON t.m = k.m AND t.day = k.day AND t.h = k.h
      LEFT JOIN methods me ON me.m = k.m AND me.day = k.day AND me.h = k.h
      LEFT JOIN declined d ON d.m = k.m AND d.day = k.day AND d.h = k.h`;
}

const scopeValues = (scope: AggregateScope) => (scope !== 'every' && 'merchantId' in scope ? { merchant: scope.merchantId } : {});

/** Live figures of the local days [fromDay, untilDay) by day or by hour, from transactions and operations. */
export async function aggregateLive(db: Db, scope: ReportScope, bucket: Bucket, range: { timeZone: string; fromDay: string; untilDay: string }): Promise<ReportRow[]> {
  const [sql, bindings] = named(aggregateSql(bucket, scope), { tz: range.timeZone, from_day: range.fromDay, until_day: range.untilDay, ...scopeValues(scope) });
  const { rows } = await db.raw<{ rows: ReportRow[] }>(sql, bindings as never[]);
  return rows;
}

/** Rolled-up figures of the local days [fromDay, untilDay): by day from report_daily, by hour from report_hourly. */
export async function readRollup(db: Db, scope: ReportScope, bucket: Bucket, range: { fromDay: string; untilDay: string }): Promise<ReportRow[]> {
  const table = bucket === 'day' ? 'report_daily' : 'report_hourly';
  const q = db(table)
    .select('merchant_id', 'day', db.raw(bucket === 'day' ? 'NULL::smallint AS hour' : 'hour'), ...FIGURE_COLUMNS, 'by_method', 'declines')
    .where('day', '>=', range.fromDay)
    .andWhere('day', '<', range.untilDay);
  if ('merchantId' in scope) q.where('merchant_id', scope.merchantId);
  else q.whereNull('merchant_id');
  return q as unknown as Promise<ReportRow[]>;
}

/**
 * Today in `timeZone` by Postgres time, and the first local day the rollup has not covered (null
 * when there is no rollup in this time zone: then every day is aggregated live).
 */
export async function reportClock(db: Db, timeZone: string): Promise<{ today: string; next_day: string | null }> {
  const { rows } = await db.raw<{ rows: { today: string; next_day: string | null }[] }>(
    `SELECT (now() AT TIME ZONE ?)::date AS today, (SELECT next_day FROM report_rollup_state WHERE time_zone = ?) AS next_day`,
    [timeZone, timeZone],
  );
  return rows[0]!;
}

// --- The rollup job's statements -------------------------------------------------------------

/** Serializes rollup runs (two schedulers, a manual run): held until the calling transaction ends. */
export async function lockRollup(trx: Db): Promise<void> {
  await trx.raw(`SELECT pg_advisory_xact_lock(hashtext('mps:report-rollup'))`);
}

export interface RollupState {
  time_zone: string;
  next_day: string;
}

export async function readRollupState(db: Db): Promise<RollupState | undefined> {
  return db<RollupState>('report_rollup_state').select('time_zone', 'next_day').first();
}

/** Sets how far the rollup reaches; a new time zone replaces the old state. */
export async function writeRollupState(db: Db, state: RollupState): Promise<void> {
  await db.raw(
    `INSERT INTO report_rollup_state (id, time_zone, next_day) VALUES (true, ?, ?)
     ON CONFLICT (id) DO UPDATE SET time_zone = excluded.time_zone, next_day = excluded.next_day, updated_at = now()`,
    [state.time_zone, state.next_day],
  );
}

/** Drops every rolled-up row (the time zone changed: each day's boundaries did too). */
export async function clearRollups(db: Db): Promise<void> {
  await db.raw('DELETE FROM report_hourly');
  await db.raw('DELETE FROM report_daily');
}

/**
 * Up to which local day the rollup may go (days before the limit may be rolled up): a day is
 * closed once it ended `graceS` ago by Postgres time (`grace_day`) and no transaction still open
 * in this database began before its end (`open_day`: the local day of the oldest open
 * transaction's start, null when none), because a worker transaction's rows carry its start time
 * (now()) even when it commits later.
 */
export async function rollupLimit(db: Db, timeZone: string, graceS: number): Promise<{ grace_day: string; open_day: string | null; oldest_open: Date | null }> {
  const { rows } = await db.raw<{ rows: { grace_day: string; open_day: string | null; oldest_open: Date | null }[] }>(
    `WITH open AS (
       SELECT min(xact_start) AS oldest FROM pg_stat_activity
        WHERE datname = current_database() AND pid <> pg_backend_pid() AND backend_type = 'client backend' AND xact_start IS NOT NULL
     )
     SELECT ((now() - make_interval(secs => ?)) AT TIME ZONE ?)::date AS grace_day, (open.oldest AT TIME ZONE ?)::date AS open_day, open.oldest AS oldest_open
       FROM open`,
    [graceS, timeZone, timeZone],
  );
  return rows[0]!;
}

/** The local day of the first transaction or failed payment at or after the start of `fromDay` (any day when null); null when there is none. */
export async function firstActivityDay(db: Db, timeZone: string, fromDay: string | null): Promise<string | null> {
  const since = fromDay === null ? `'-infinity'::timestamptz` : `(CAST(? AS date))::timestamp AT TIME ZONE ?`;
  const sinceBindings = fromDay === null ? [] : [fromDay, timeZone];
  const { rows } = await db.raw<{ rows: { day: string | null }[] }>(
    `SELECT (least((SELECT min(created_at) FROM transactions WHERE created_at >= ${since}),
                   (SELECT min(completed_at) FROM operations WHERE type = 'payment' AND status = 'failed' AND completed_at >= ${since})) AT TIME ZONE ?)::date AS day`,
    [...sinceBindings, ...sinceBindings, timeZone],
  );
  return rows[0]!.day;
}

/**
 * Recomputes one local day's rollup rows (every merchant with activity, and the platform) by day
 * and by hour from transactions and operations. Idempotent: the day's old rows go first.
 */
export async function rollupDay(trx: Db, timeZone: string, day: string): Promise<{ merchants: number }> {
  await trx.raw('DELETE FROM report_daily WHERE day = ?', [day]);
  await trx.raw('DELETE FROM report_hourly WHERE day = ?', [day]);
  const columns = [...FIGURE_COLUMNS, 'by_method', 'declines'].join(', ');
  const values = { tz: timeZone, from_day: day, until_day: addDays(day, 1) };
  const [daily, dailyBindings] = named(`INSERT INTO report_daily (merchant_id, day, ${columns}) SELECT merchant_id, day, ${columns} FROM (${aggregateSql('day', 'every')}) a`, values);
  const [hourly, hourlyBindings] = named(`INSERT INTO report_hourly (merchant_id, day, hour, ${columns}) SELECT merchant_id, day, hour, ${columns} FROM (${aggregateSql('hour', 'every')}) a`, values);
  const inserted = await trx.raw<{ rowCount: number }>(daily, dailyBindings as never[]);
  await trx.raw(hourly, hourlyBindings as never[]);
  // The platform row is one of them when the day had any activity.
  return { merchants: Math.max(0, (inserted.rowCount ?? 0) - 1) };
}
