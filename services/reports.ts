import type { Deps } from '../app/deps.js';
import { findMerchant } from '../db/queries/merchants.js';
import { aggregateLive, readRollup, reportClock, type ReportRow, type ReportScope } from '../db/queries/reports.js';
import { AppError, forbidden, notFound } from '../domain/errors.js';
import type { Principal } from '../domain/principal.js';
import { addDays, datesFrom, DEFAULT_REPORT_DAYS, fillPeriods, MAX_REPORT_DAYS, maxDay, minDay, periodKey, spanDays, type ReportFigures, type ReportPeriod } from '../domain/report.js';

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
 * of one day. Days before the rollup's next_day come from report_daily / report_hourly, the rest
 * from a live aggregate of transactions and operations; both are read in one snapshot
 * (REPEATABLE READ), so a rollup committing meanwhile neither hides nor doubles a day.
 */
export async function dailyReport(deps: Pick<Deps, 'dbRead' | 'config'>, principal: Principal, input: DailyReportInput): Promise<DailyReport> {
  const scope = await scopeOf(deps, principal, input.merchantId);
  const timeZone = deps.config.SETTLEMENT_TZ;
  return deps.dbRead.transaction(
    async (trx) => {
      const clock = await reportClock(trx, timeZone);
      // No rollup in this time zone yet: every day is live (correct, only slower).
      const rolledBefore = clock.next_day ?? '0001-01-01';
      if (input.granularity === 'hour') {
        const date = input.date ?? clock.today;
        const untilDay = addDays(date, 1);
        const rows = date < rolledBefore ? await readRollup(trx, scope, 'hour', { fromDay: date, untilDay }) : await aggregateLive(trx, scope, 'hour', { timeZone, fromDay: date, untilDay });
        const hours = Array.from({ length: 24 }, (_, hour) => ({ date, hour }));
        return { ...header(scope, timeZone, 'hour', date, date), periods: fillPeriods(hours, byPeriod(rows)) };
      }
      const { from, to } = window(input, clock.today);
      const rows: ReportRow[] = [];
      const rolledUntil = minDay(addDays(to, 1), rolledBefore);
      if (from < rolledUntil) rows.push(...(await readRollup(trx, scope, 'day', { fromDay: from, untilDay: rolledUntil })));
      const liveFrom = maxDay(from, rolledBefore);
      if (liveFrom <= to) rows.push(...(await aggregateLive(trx, scope, 'day', { timeZone, fromDay: liveFrom, untilDay: addDays(to, 1) })));
      return { ...header(scope, timeZone, 'day', from, to), periods: fillPeriods(datesFrom(from, to).map((date) => ({ date })), byPeriod(rows)) };
    },
    { isolationLevel: 'repeatable read', readOnly: true },
  );
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

function byPeriod(rows: ReportRow[]): Map<string, ReportFigures> {
  return new Map(rows.map(({ merchant_id: _m, day, hour, ...figures }) => [periodKey(day, hour), figures]));
}

const header = (scope: ReportScope, timeZone: string, granularity: 'day' | 'hour', from: string, to: string) => ({
  scope: { merchant_id: 'merchantId' in scope ? scope.merchantId : null },
  time_zone: timeZone,
  granularity,
  from,
  to,
});
