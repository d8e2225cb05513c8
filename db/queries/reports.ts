import { addDays, type ReportFigures } from '../../domain/report.js';
import { prepared, type Db } from '../knex.js';

/**
 * Daily report SQL: one aggregate of transactions and failed payment operations by local day or
 * hour (SETTLEMENT_TZ), used both by the rollup job (to fill report_daily / report_hourly) and live
 * by every report (for what came after the rollup), so that the two can never count differently.
 *
 * What a period holds (README "Daily reports"): rows count on the local day and hour they were
 * written by the worker (transactions.created_at, and operations.completed_at of a failed
 * payment: both the worker transaction's now()). Nothing later changes a row's figures: a refund
 * counts on its own day, not on its payment's, so a closed day stays closed.
 * - payments: type payment, Σ final_amount (what the card paid, after discount), by payment_method;
 * - refunds: type refund, Σ final_amount;
 * - recharges at the till: type recharge with a merchant_id (top-ups a merchant took at its till);
 * - distinct_cards: cards with a payment in the period;
 * - declines: payment operations that failed, by error_code.
 * Only rows with a merchant count (every payment and refund has one).
 *
 * The rollup holds every period's figures of the rows before report_rollup_state.rolled_until (an
 * instant); a report adds the live aggregate of the rows at or after it. Counts, amounts, methods
 * and declines add up; distinct cards add up because the live part counts only the cards that had
 * not paid in the same period (and scope) before rolled_until.
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

/** Rows from the start of :from_day but not before :floor_at, to the start of :until_day but not from :cap_at on. */
const FROM = `greatest((CAST(:from_day AS date))::timestamp AT TIME ZONE :tz, CAST(:floor_at AS timestamptz))`;
const UNTIL = `least((CAST(:until_day AS date))::timestamp AT TIME ZONE :tz, CAST(:cap_at AS timestamptz))`;
const FIGURE_COLUMNS = ['payment_count', 'payment_minor', 'refund_count', 'refund_minor', 'recharge_count', 'recharge_minor', 'distinct_cards'] as const;

/**
 * The aggregate of the rows in [FROM, UNTIL) by merchant (or platform) and local day or hour.
 * `every` gives one row per merchant and period plus the platform's (merchant_id NULL), from one
 * scan (GROUPING SETS); the platform row is not a sum of the merchants' (distinct cards). With
 * `afterFloor`, a payment's card counts in distinct_cards only when the card had not paid in the
 * same period and scope before :floor_at (looked up by transactions_card_time).
 */
function aggregateSql(bucket: Bucket, scope: AggregateScope, afterFloor: boolean): string {
  const hourOf = (column: string) => (bucket === 'hour' ? `extract(hour FROM ${column} AT TIME ZONE :tz)::smallint` : 'NULL::smallint');
  const oneMerchant = scope !== 'every' && 'merchantId' in scope;
  const only = (alias: string) => (oneMerchant ? `AND ${alias}.merchant_id = CAST(:merchant AS uuid)` : '');
  // Grouping keys carry no NULLs, so that the parts below join on plain equality (hash joins).
  const key = scope === 'every' || oneMerchant ? `coalesce(merchant_id, '${NO_MERCHANT}'::uuid) AS m, day, coalesce(hour, -1) AS h` : `'${NO_MERCHANT}'::uuid AS m, day, coalesce(hour, -1) AS h`;
  const groups = (extra = '') => (scope === 'every' ? `GROUPING SETS ((merchant_id, day, hour${extra}), (day, hour${extra}))` : oneMerchant ? `merchant_id, day, hour${extra}` : `day, hour${extra}`);
  // An earlier payment of the card in the same local period: searched from an hour before the
  // period's start (a period's first instant is ambiguous at a DST change), then matched by period.
  const seenBefore = `EXISTS (
            SELECT 1 FROM transactions p
             WHERE p.card_id = r.card_id AND p.type = 'payment' AND p.merchant_id IS NOT NULL ${only('p')}
               AND p.created_at >= (r.day::timestamp + make_interval(hours => coalesce(r.hour, 0)::int)) AT TIME ZONE :tz - interval '1 hour'
               AND p.created_at < CAST(:floor_at AS timestamptz)
               AND (p.created_at AT TIME ZONE :tz)::date = r.day ${bucket === 'hour' ? `AND extract(hour FROM p.created_at AT TIME ZONE :tz) = r.hour` : ''})`;
  return `WITH src AS (
      SELECT t.merchant_id, (t.created_at AT TIME ZONE :tz)::date AS day, ${hourOf('t.created_at')} AS hour, t.type,
             coalesce(t.payment_method, 'unknown') AS method, t.card_id, t.final_amount_minor AS minor
        FROM transactions t
       WHERE t.created_at >= ${FROM} AND t.created_at < ${UNTIL}
         AND t.type IN ('payment', 'refund', 'recharge') AND t.merchant_id IS NOT NULL ${only('t')}
    ), tx AS MATERIALIZED (
      SELECT r.*, ${afterFloor ? `r.type = 'payment' AND NOT ${seenBefore}` : `r.type = 'payment'`} AS new_card FROM src r
    ), totals AS (
      SELECT ${key},
             count(*) FILTER (WHERE type = 'payment') AS payment_count,
             coalesce(sum(minor) FILTER (WHERE type = 'payment'), 0)::bigint AS payment_minor,
             count(*) FILTER (WHERE type = 'refund') AS refund_count,
             coalesce(sum(minor) FILTER (WHERE type = 'refund'), 0)::bigint AS refund_minor,
             count(*) FILTER (WHERE type = 'recharge') AS recharge_count,
             coalesce(sum(minor) FILTER (WHERE type = 'recharge'), 0)::bigint AS recharge_minor,
             count(DISTINCT card_id) FILTER (WHERE new_card) AS distinct_cards
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
                       WHERE o.type = 'payment' AND o.status = 'failed' AND o.completed_at >= ${FROM} AND o.completed_at < ${UNTIL}
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

/** A timestamptz parameter: an instant, or the open end of time. */
const instant = (at: Date | null, open: '-infinity' | 'infinity') => (at === null ? open : at.toISOString());

/**
 * Live figures of the local days [fromDay, untilDay) by day or hour, from the rows at or after
 * `rolledUntil` (all rows when null): what the rollup does not hold yet, with distinct_cards
 * counting only cards new to their period since then.
 *
 * `planOnce` (inside a transaction): a named statement with a generic plan, planned once per
 * connection. Planning took 2–5 ms of a 7 ms report at the bench's scale, executing 0.5 ms; and
 * the generic plan reads by index whatever the window, where a custom plan, trusting statistics
 * that put the bench's million preloaded recharges inside a 3-hour window, scanned all 6,000,000
 * transactions (1.9 s against 15 ms).
 */
export async function aggregateLive(
  db: Db,
  scope: ReportScope,
  bucket: Bucket,
  range: { timeZone: string; fromDay: string; untilDay: string; rolledUntil: Date | null },
  options: { planOnce?: boolean } = {},
): Promise<ReportRow[]> {
  const [sql, bindings] = named(aggregateSql(bucket, scope, range.rolledUntil !== null), {
    tz: range.timeZone,
    from_day: range.fromDay,
    until_day: range.untilDay,
    floor_at: instant(range.rolledUntil, '-infinity'),
    cap_at: 'infinity',
    ...(('merchantId' in scope) ? { merchant: scope.merchantId } : {}),
  });
  if (!options.planOnce) return (await db.raw<{ rows: ReportRow[] }>(sql, bindings as never[])).rows;
  await db.raw('SET LOCAL plan_cache_mode = force_generic_plan');
  return (await prepared(db.raw<{ rows: ReportRow[] }>(sql, bindings as never[]))).rows;
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
 * Today in `timeZone` by Postgres time, and how far the rollup reaches (null when there is no
 * rollup in this time zone: then every row is aggregated live).
 */
export async function reportClock(db: Db, timeZone: string): Promise<{ today: string; rolled_until: Date | null }> {
  const { rows } = await db.raw<{ rows: { today: string; rolled_until: Date | null }[] }>(
    `SELECT (now() AT TIME ZONE ?)::date AS today, (SELECT rolled_until FROM report_rollup_state WHERE time_zone = ?) AS rolled_until`,
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
  rolled_until: Date;
}

export async function readRollupState(db: Db): Promise<RollupState | undefined> {
  return db<RollupState>('report_rollup_state').select('time_zone', 'rolled_until').first();
}

/** Sets how far the rollup reaches; a new time zone replaces the old state. */
export async function writeRollupState(db: Db, state: RollupState): Promise<void> {
  await db.raw(
    `INSERT INTO report_rollup_state (id, time_zone, rolled_until) VALUES (true, ?, ?)
     ON CONFLICT (id) DO UPDATE SET time_zone = excluded.time_zone, rolled_until = excluded.rolled_until, updated_at = now()`,
    [state.time_zone, state.rolled_until],
  );
}

/** Drops every rolled-up row (the time zone changed: each day's boundaries did too). */
export async function clearRollups(db: Db): Promise<void> {
  await db.raw('DELETE FROM report_hourly');
  await db.raw('DELETE FROM report_daily');
}

/**
 * How far the rollup may reach now: `graceS` before Postgres's now(), and not past the start of
 * the oldest transaction still open in this database (`oldest_open`), because a worker
 * transaction's rows carry its start time (now()) even when it commits later.
 */
export async function rollupLimit(db: Db, graceS: number): Promise<{ limit_at: Date; oldest_open: Date | null }> {
  const { rows } = await db.raw<{ rows: { limit_at: Date; oldest_open: Date | null }[] }>(
    `WITH open AS (
       SELECT min(xact_start) AS oldest FROM pg_stat_activity
        WHERE datname = current_database() AND pid <> pg_backend_pid() AND backend_type = 'client backend' AND xact_start IS NOT NULL
     )
     SELECT least(now() - make_interval(secs => ?), open.oldest) AS limit_at, open.oldest AS oldest_open FROM open`,
    [graceS],
  );
  return rows[0]!;
}

/**
 * The instant of the first transaction or failed payment at or after `from` (from the beginning
 * when null), the local day it falls on and that day's start; null when there is none.
 */
export async function firstActivity(db: Db, timeZone: string, from: Date | null): Promise<{ at: Date; day: string; day_start: Date } | null> {
  const since = instant(from, '-infinity');
  const { rows } = await db.raw<{ rows: { at: Date | null; day: string | null; day_start: Date | null }[] }>(
    `WITH first AS (
       SELECT least((SELECT min(created_at) FROM transactions WHERE created_at >= CAST(? AS timestamptz)),
                    (SELECT min(completed_at) FROM operations WHERE type = 'payment' AND status = 'failed' AND completed_at >= CAST(? AS timestamptz))) AS at
     )
     SELECT at, (at AT TIME ZONE ?)::date AS day, ((at AT TIME ZONE ?)::date)::timestamp AT TIME ZONE ? AS day_start FROM first`,
    [since, since, timeZone, timeZone, timeZone],
  );
  const row = rows[0]!;
  return row.at === null ? null : { at: row.at, day: row.day!, day_start: row.day_start! };
}

/** The local day an instant falls on, and the start of the next day. */
export async function localDayOf(db: Db, timeZone: string, at: Date): Promise<{ day: string; next_day_start: Date }> {
  const { rows } = await db.raw<{ rows: { day: string; next_day_start: Date }[] }>(
    `SELECT (CAST(? AS timestamptz) AT TIME ZONE ?)::date AS day, ((CAST(? AS timestamptz) AT TIME ZONE ?)::date + 1)::timestamp AT TIME ZONE ? AS next_day_start`,
    [at, timeZone, at, timeZone, timeZone],
  );
  return rows[0]!;
}

/**
 * Recomputes one local day's rollup rows, by day and by hour, for every merchant with activity
 * and for the platform, from the day's rows before `until` (the rollup's new reach). Idempotent:
 * the day's old rows go first.
 */
export async function rollupDay(trx: Db, timeZone: string, day: string, until: Date): Promise<void> {
  await trx.raw('DELETE FROM report_daily WHERE day = ?', [day]);
  await trx.raw('DELETE FROM report_hourly WHERE day = ?', [day]);
  const columns = [...FIGURE_COLUMNS, 'by_method', 'declines'].join(', ');
  const values = { tz: timeZone, from_day: day, until_day: addDays(day, 1), floor_at: '-infinity', cap_at: until.toISOString() };
  const [daily, dailyBindings] = named(`INSERT INTO report_daily (merchant_id, day, ${columns}) SELECT merchant_id, day, ${columns} FROM (${aggregateSql('day', 'every', false)}) a`, values);
  const [hourly, hourlyBindings] = named(`INSERT INTO report_hourly (merchant_id, day, hour, ${columns}) SELECT merchant_id, day, hour, ${columns} FROM (${aggregateSql('hour', 'every', false)}) a`, values);
  await trx.raw(daily, dailyBindings as never[]);
  await trx.raw(hourly, hourlyBindings as never[]);
}
