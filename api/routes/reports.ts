import { Router, type Request, type Response } from 'express';
import { z } from 'zod';
import type { Deps } from '../../app/deps.js';
import { formatMinor } from '../../domain/money.js';
import type { ReportPeriod } from '../../domain/report.js';
import { dailyReport, type DailyReport, type DailyReportInput } from '../../services/reports.js';
import { allow, principalOf } from '../middleware/auth.js';
import { fields, parse } from '../../domain/validate.js';

/** A calendar date that exists (2026-02-30 does not) in the years Postgres and the API agree on. */
const day = z
  .string()
  .regex(/^\d{4}-\d{2}-\d{2}$/, 'must be a date YYYY-MM-DD')
  .refine((d) => {
    const t = new Date(`${d}T00:00:00Z`);
    const year = Number(d.slice(0, 4));
    return !Number.isNaN(t.getTime()) && t.toISOString().slice(0, 10) === d && year >= 1970 && year <= 9999;
  }, 'must be a real date from 1970 to 9999');

const common = { from: day.optional(), to: day.optional(), date: day.optional(), granularity: z.enum(['day', 'hour']).default('day') };

/** `from`/`to` select days; `date` the day of the hourly breakdown. Mixing them is a mistake worth a 400, not a guess. */
const consistent = (q: { from?: string; to?: string; date?: string; granularity: 'day' | 'hour' }, ctx: z.RefinementCtx) => {
  if (q.granularity === 'hour' && (q.from || q.to)) ctx.addIssue({ code: 'custom', path: [q.from ? 'from' : 'to'], message: 'does not apply with granularity=hour: give date (default today)' });
  if (q.granularity === 'day' && q.date) ctx.addIssue({ code: 'custom', path: ['date'], message: 'is the day of granularity=hour; a range of days is from and to' });
  if (q.from && q.to && q.from > q.to) ctx.addIssue({ code: 'custom', path: ['from'], message: 'must not be after to' });
};
const merchantQuery = z.strictObject(common).superRefine(consistent);
const adminQuery = z.strictObject({ ...common, merchant_id: fields.uuid.optional() }).superRefine(consistent);

const BASE_COLUMNS = ['date', 'payment_count', 'payment_amount', 'refund_count', 'refund_amount', 'recharge_count', 'recharge_amount', 'net_amount', 'distinct_cards'] as const;

/**
 * Daily reports (API.md "Directory, keys and reports"): a merchant's own at /merchant/reports/daily,
 * the platform's or one merchant's for admins at /reports/daily; `.csv` of each. Reads the replica
 * when there is one.
 */
export function reportRoutes(deps: Deps): Router {
  const router = Router();

  const serve = (format: 'json' | 'csv', input: (req: Request) => DailyReportInput) => async (req: Request, res: Response) => {
    const report = await dailyReport(deps, principalOf(req), input(req));
    if (format === 'json') return res.json(reportJson(report));
    const name = report.granularity === 'hour' ? `report-hourly-${report.from}` : `report-daily-${report.from}-${report.to}`;
    res.setHeader('Content-Type', 'text/csv; charset=utf-8');
    res.setHeader('Content-Disposition', `attachment; filename="${name}.csv"`);
    res.send(reportCsv(report));
  };
  const merchantInput = (req: Request): DailyReportInput => parse(merchantQuery, req.query, 'query');
  const adminInput = (req: Request): DailyReportInput => {
    const { merchant_id: merchantId, ...q } = parse(adminQuery, req.query, 'query');
    return { ...q, merchantId };
  };

  router.get('/merchant/reports/daily.csv', allow('merchant'), serve('csv', merchantInput));
  router.get('/merchant/reports/daily', allow('merchant'), serve('json', merchantInput));
  router.get('/reports/daily.csv', allow('admin'), serve('csv', adminInput));
  router.get('/reports/daily', allow('admin'), serve('json', adminInput));
  return router;
}

function periodJson(p: ReportPeriod) {
  return {
    date: p.date,
    ...(p.hour === undefined ? {} : { hour: p.hour }),
    payment_count: p.payment_count,
    payment_amount: formatMinor(p.payment_minor),
    refund_count: p.refund_count,
    refund_amount: formatMinor(p.refund_minor),
    recharge_count: p.recharge_count,
    recharge_amount: formatMinor(p.recharge_minor),
    net_amount: formatMinor(p.net_minor),
    distinct_cards: p.distinct_cards,
    by_method: Object.fromEntries(Object.entries(p.by_method).map(([method, minor]) => [method, formatMinor(minor)])),
    declines: { ...p.declines },
  };
}

export function reportJson(r: DailyReport) {
  return { merchant_id: r.scope.merchant_id, time_zone: r.time_zone, granularity: r.granularity, from: r.from, to: r.to, data: r.periods.map(periodJson) };
}

/**
 * One header row, then one row per period. Payment methods and decline codes become columns
 * `by_method.<method>` and `declines.<code>`, one for each that occurs in the report (sorted), 0
 * where a period has none.
 */
export function reportCsv(r: DailyReport): string {
  const rows = r.periods.map(periodJson);
  const methods = [...new Set(rows.flatMap((p) => Object.keys(p.by_method)))].sort();
  const codes = [...new Set(rows.flatMap((p) => Object.keys(p.declines)))].sort();
  const base: string[] = r.granularity === 'hour' ? ['date', 'hour', ...BASE_COLUMNS.slice(1)] : [...BASE_COLUMNS];
  const header = [...base, ...methods.map((m) => `by_method.${m}`), ...codes.map((c) => `declines.${c}`)];
  const lines = rows.map((p) => {
    const plain = p as unknown as Record<string, string | number>;
    return [...base.map((c) => plain[c]), ...methods.map((m) => p.by_method[m] ?? '0.00'), ...codes.map((c) => p.declines[c] ?? 0)].map((v) => csvCell(String(v))).join(',');
  });
  return `${[header.map(csvCell).join(','), ...lines].join('\n')}\n`;
}

/** Quotes a cell only when it needs it; every value here is a date, number, amount, method or code. */
const csvCell = (v: string) => (/[",\n\r]/.test(v) ? `"${v.replace(/"/g, '""')}"` : v);
