import type { Deps } from '../app/deps.js';
import { findMerchant } from '../db/queries/merchants.js';
import { aggregateLive, readRollup, reportClock, type Bucket, type ReportRow, type ReportScope } from '../db/queries/reports.js';
import { AppError, forbidden, notFound } from '../domain/errors.js';
import type { Principal } from '../domain/principal.js';
import { addDays, addFigures, datesFrom, DEFAULT_REPORT_DAYS, fillPeriods, MAX_REPORT_DAYS, periodKey, spanDays, type ReportFigures, type ReportPeriod } from '../domain/report.js';
import type { Db } from '../db/knex.js';

export interface DailyReportInput {
  /** Admin only: one merchant instead of the platform. */
  merchantId?: string;
  from?: string;
  to?: string;
  /** With granularity `hour`: the day to break down (default today). */
  date?: string;
  granularity: 'day' | 'hour';
}

export interface DailyReport {
  scope: { merchant_id: string | null };
  time_zone: string;
  granularity: 'day' | 'hour';
  from: string;
  to: string;
  periods: ReportPeriod[];
}

/**
 * The daily report (API.md "Directory, keys and reports"): a merchant's own, or for an admin the
 * platform's or one merchant's; one row per local day (SETTLEMENT_TZ) of [from, to], or per hour
 * of one day. Each period is its rollup row (report_daily / report_hourly: the rows before the
 * rollup's reach) plus the live aggregate of the rows since; both are read in one snapshot
 * (REPEATABLE READ), so a rollup committing meanwhile neither hides nor doubles a row.
 */
export async function dailyReport(deps: Pick<Deps, 'dbRead' | 'config'>, principal: Principal, input: DailyReportInput): Promise<DailyReport> {
  const scope = await scopeOf(deps, principal, input.merchantId);
  const timeZone = deps.config.SETTLEMENT_TZ;
  return deps.dbRead.transaction(
    async (trx) => {
      const clock = await reportClock(trx, timeZone);
      if (input.granularity === 'hour') {
        const date = input.date ?? clock.today;
        const figures = await periodFigures(trx, scope, 'hour', { timeZone, fromDay: date, untilDay: addDays(date, 1), rolledUntil: clock.rolled_until });
        const hours = Array.from({ length: 24 }, (_, hour) => ({ date, hour }));
        return { ...header(scope, timeZone, 'hour', date, date), periods: fillPeriods(hours, figures) };
      }
      const { from, to } = window(input, clock.today);
      const figures = await periodFigures(trx, scope, 'day', { timeZone, fromDay: from, untilDay: addDays(to, 1), rolledUntil: clock.rolled_until });
      return { ...header(scope, timeZone, 'day', from, to), periods: fillPeriods(datesFrom(from, to).map((date) => ({ date })), figures) };
    },
    { isolationLevel: 'repeatable read', readOnly: true },
  );
}

/** Rolled-up and live figures of each period in [fromDay, untilDay), added together. */
async function periodFigures(trx: Db, scope: ReportScope, bucket: Bucket, range: { timeZone: string; fromDay: string; untilDay: string; rolledUntil: Date | null }): Promise<Map<string, ReportFigures>> {
  // No rollup in this time zone yet: every row is live (exact, only slower).
  const rolled = range.rolledUntil === null ? [] : await readRollup(trx, scope, bucket, range);
  const live = await aggregateLive(trx, scope, bucket, range, { planOnce: true });
  const figures = new Map<string, ReportFigures>();
  for (const { merchant_id: _m, day, hour, ...f } of [...rolled, ...live] as ReportRow[]) {
    const key = periodKey(day, hour);
    const earlier = figures.get(key);
    figures.set(key, earlier ? addFigures(earlier, f) : f);
  }
  return figures;
}

/** A merchant key reads its own shop only; an admin the platform or the merchant it names. */
async function scopeOf(deps: Pick<Deps, 'dbRead'>, principal: Principal, merchantId: string | undefined): Promise<ReportScope> {
  if (principal.role === 'merchant') {
    if (!principal.merchantId || merchantId !== undefined) throw forbidden();
    return { merchantId: principal.merchantId };
  }
  if (principal.role !== 'admin') throw forbidden();
  if (merchantId === undefined) return { platform: true };
  if (!(await findMerchant(deps.dbRead, merchantId))) throw notFound('merchant');
  return { merchantId };
}

/**
 * [from, to] with the defaults: `to` today (SETTLEMENT_TZ, Postgres time), `from` DEFAULT_REPORT_DAYS
 * days up to `to`. At most MAX_REPORT_DAYS days, and `from` not after `to`.
 */
function window(input: DailyReportInput, today: string): { from: string; to: string } {
  const to = input.to ?? today;
  const from = input.from ?? addDays(to, -(DEFAULT_REPORT_DAYS - 1));
  if (from > to) throw invalidQuery('from', `must not be after to (${to})`);
  if (spanDays(from, to) > MAX_REPORT_DAYS) throw invalidQuery('to', `the report spans at most ${MAX_REPORT_DAYS} days (from ${from} to ${to} is ${spanDays(from, to)})`);
  return { from, to };
}

function invalidQuery(field: string, message: string): AppError {
  return new AppError('VALIDATION_ERROR', `Invalid query: ${field}: ${message}`, { issues: [{ field, message }] });
}

const header = (scope: ReportScope, timeZone: string, granularity: 'day' | 'hour', from: string, to: string) => ({
  scope: { merchant_id: 'merchantId' in scope ? scope.merchantId : null },
  time_zone: timeZone,
  granularity,
  from,
  to,
});
