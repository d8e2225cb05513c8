import type { Knex } from 'knex';
import { loadConfig } from '../config/env.js';
import { createLogger } from '../config/logger.js';
import { createApiKey } from '../db/queries/api-keys.js';
import { aggregateLive } from '../db/queries/reports.js';
import { addDays } from '../domain/report.js';
import { runReportRollup } from '../jobs/report-rollup.js';
import { call } from './load.js';
import { preloadReportActivity } from './report-activity.js';
import { summarize } from './stats.js';

/** Times `count` requests (numbers from..from+count-1) by `concurrency` clients; their latencies. */
export type TimeRequests = (name: string, path: (i: number) => string, concurrency: number, from: number, count: number, key: (i: number) => string) => Promise<number[]>;

export interface ReportBenchInput {
  db: Knex;
  engineUrl: string;
  adminKey: string;
  /** The scale preload's run, merchants, admin key id and sizes (bench/scale.ts). */
  run: string;
  merchantIds: string[];
  adminKeyId: string;
  cards: number;
  total: number;
  dayCount: number;
  /** Payments today; default an average day of the spread history. */
  today?: number;
  requests: number;
  concurrencies: number[];
  warmupRequests: number;
  timeRequests: TimeRequests;
  /** Times a step and notes it under `name`. */
  time: <T>(name: string, fn: () => Promise<T>) => Promise<T>;
  timings: Record<string, number>;
}

/**
 * The daily report part of the scale scenario: history's refunds and declines and today's traffic
 * (bench/report-activity.ts), the rollup over the whole history, then the 31-day report over HTTP,
 * platform-wide and per merchant (the rollup plus the live part after its reach) and today by
 * hour, and the same 31 days aggregated live in SQL: what the rollup saves, and a check that the
 * served report equals it (it throws if not).
 */
export async function benchDailyReports(o: ReportBenchInput) {
  const { db, engineUrl, adminKey: admin, merchantIds, time } = o;
  const timeZone = 'Asia/Taipei'; // the engine's SETTLEMENT_TZ (default)
  const todayCount = o.today ?? Math.round((o.total - o.dayCount) / 394);
  const activity = await time('preload report activity', () =>
    preloadReportActivity(db, { run: o.run, cards: o.cards, total: o.total, dayCount: o.dayCount, today: todayCount, merchantIds, adminKeyId: o.adminKeyId, timeZone }),
  );
  const config = loadConfig({ NODE_ENV: 'test', SETTLEMENT_TZ: timeZone });
  const rollup = await time('report rollup of the whole history', () => runReportRollup({ db, config, logger: createLogger('silent') }, { budgetMs: 6 * 3_600_000 }));
  const rolledDays = Number((await db.raw(`SELECT count(*) AS n FROM report_daily WHERE merchant_id IS NULL`)).rows[0].n);
  console.log(`rollup: ${JSON.stringify(rollup)}, ${rolledDays} days with activity`);
  const today = (await db.raw(`SELECT to_char((now() AT TIME ZONE ?)::date, 'YYYY-MM-DD') AS d`, [timeZone])).rows[0].d as string;
  const from = addDays(today, -30);
  const reportKeys = await Promise.all(merchantIds.slice(0, 10).map(async (merchantId) => (await createApiKey(db, { role: 'merchant', merchantId, name: 'scale bench reports' })).key));
  const reports: Record<string, { path: (i: number) => string; key: (i: number) => string }> = {
    report_31d_platform: { path: () => `/v1/reports/daily?from=${from}&to=${today}`, key: () => admin },
    report_31d_merchant: { path: () => `/v1/merchant/reports/daily?from=${from}&to=${today}`, key: (i) => reportKeys[i % reportKeys.length]! },
    report_31d_merchant_by_admin: { path: (i) => `/v1/reports/daily?merchant_id=${merchantIds[i % merchantIds.length]}&from=${from}&to=${today}`, key: () => admin },
    report_today_by_hour_platform: { path: () => `/v1/reports/daily?granularity=hour`, key: () => admin },
  };
  // Not recorded: warm-up, as for the lists.
  for (const [name, r] of Object.entries(reports)) await o.timeRequests(name, r.path, o.concurrencies[0]!, o.requests * o.concurrencies.length, o.warmupRequests, r.key);
  const latency: Record<string, Record<string, ReturnType<typeof summarize>>> = {};
  for (const [n, concurrency] of o.concurrencies.entries()) {
    const byReport: Record<string, ReturnType<typeof summarize>> = {};
    for (const [name, r] of Object.entries(reports)) {
      byReport[name] = summarize(await o.timeRequests(name, r.path, concurrency, n * o.requests, o.requests, r.key));
      console.log(`${name}, ${concurrency} clients: ${JSON.stringify(byReport[name])}`);
    }
    latency[`${concurrency}_clients`] = byReport;
  }
  const live = async (scope: { platform: true } | { merchantId: string }) => {
    const t0 = performance.now();
    const rows = await aggregateLive(db, scope, 'day', { timeZone, fromDay: from, untilDay: addDays(today, 1), rolledUntil: null });
    return { ms: performance.now() - t0, rows };
  };
  const livePlatform = [];
  for (let i = 0; i < 5; i++) livePlatform.push(await live({ platform: true }));
  const liveMerchant = [];
  for (let i = 0; i < 10; i++) liveMerchant.push(await live({ merchantId: merchantIds[i % merchantIds.length]! }));
  const served = await call<{ data: { date: string; payment_count: number; payment_amount: string; refund_amount: string; distinct_cards: number; declines: Record<string, number> }[] }>(
    `${engineUrl}/v1/reports/daily?from=${from}&to=${today}`,
    'GET',
    { authorization: `Bearer ${admin}` },
  );
  const byDay = new Map(livePlatform[0]!.rows.map((r) => [r.day, r]));
  const minor = (a: string) => Math.round(Number(a) * 100);
  const mismatches = served.body.data.filter((d) => {
    const r = byDay.get(d.date);
    const expected = r ? [r.payment_count, r.payment_minor, r.refund_minor, r.distinct_cards, JSON.stringify(r.declines)] : [0, 0, 0, 0, '{}'];
    return JSON.stringify([d.payment_count, minor(d.payment_amount), minor(d.refund_amount), d.distinct_cards, JSON.stringify(d.declines)]) !== JSON.stringify(expected);
  });
  if (mismatches.length) throw new Error(`the served report differs from the live aggregate on ${mismatches.map((d) => d.date).join(', ')}`);
  const last31 = served.body.data.reduce((s, d) => s + d.payment_count, 0);
  return {
    conditions: `31 days (${from} to ${today}, ${timeZone}, ${last31} payments): the rollup up to its reach, the rest live; ${o.requests} requests per report and number of clients after ${o.warmupRequests} not recorded; per merchant over ${reportKeys.length} merchants' keys (and by admin over all ${merchantIds.length})`,
    activity,
    rollup: { ...rollup, days_with_activity: rolledDays, ms: o.timings['report rollup of the whole history'] },
    latency_ms: latency,
    without_rollup_sql_ms: { platform_31d: summarize(livePlatform.map((l) => l.ms)), merchant_31d: summarize(liveMerchant.map((l) => l.ms)) },
    served_equals_live_aggregate: true,
  };
}
