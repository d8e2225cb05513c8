import { cpus, totalmem } from 'node:os';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { createKnex, migrateLatest } from '../db/knex.js';
import { generateSettlements } from '../db/queries/settlements.js';
import { createApiKey } from '../db/queries/api-keys.js';
import { benchStores, startEngine } from './engine.js';
import { call } from './load.js';
import { benchEmail, benchPhone, md5Uuid, preload, uuidSql, type Preload } from './preload.js';
import type { Knex } from 'knex';
import { benchDailyReports } from './reports.js';
import { summarize } from './stats.js';

/**
 * `scale`: 1,000,000 cards and 5,000,000 transactions preloaded, then the list endpoints (the
 * members', cards' and merchants' own, the member directory and the admin's lists across
 * tenants) timed over HTTP and the settlement of one 100,000-transaction day timed in SQL. Then
 * refunds, declines and today's traffic are added (bench/report-activity.ts), the report rollup is
 * run over the whole history, and the 31-day daily report is timed over HTTP, platform-wide and
 * per merchant (the rollup plus the live part after its reach), against the same report
 * aggregated live in SQL. The bulk payments are paid with an external method and earn no points,
 * so they need no ledger rows and every invariant still holds.
 */
// Not strict: `npm run bench -- --scenario scale …` passes the bench's own flags through too.
const { values: flags } = parseArgs({
  strict: false,
  options: {
    cards: { type: 'string', default: '1000000' },
    transactions: { type: 'string', default: '5000000' },
    day: { type: 'string', default: '100000' },
    requests: { type: 'string', default: '2000' },
    // Comma-separated: the lists are timed once per number of concurrent clients.
    concurrency: { type: 'string', default: '8,1' },
    'warmup-requests': { type: 'string', default: '200' },
    // Payments today (SETTLEMENT_TZ, up to now) for the reports' live part; default: an average day of the spread.
    today: { type: 'string' },
    out: { type: 'string', default: 'bench/results' },
    // The run id of a scale preload left in DATABASE_URL: time its lists (and reports) again without preloading.
    reuse: { type: 'string' },
  },
});
const args = Object.fromEntries(Object.entries(flags).map(([k, v]) => [k, String(v)])) as Record<'cards' | 'transactions' | 'day' | 'requests' | 'concurrency' | 'warmup-requests' | 'today' | 'out' | 'reuse', string>;

async function main() {
  const cards = Number(args.cards);
  const total = Number(args.transactions);
  const dayCount = Number(args.day);
  const stores = await benchStores('scale');
  const { databaseUrl, redisUrl } = stores;
  const db = createKnex(databaseUrl, 4, () => undefined);
  await migrateLatest(db);
  const timings: Record<string, number> = {};
  const time = async <T>(name: string, fn: () => Promise<T>) => {
    const t0 = performance.now();
    const result = await fn();
    timings[name] = Math.round(performance.now() - t0);
    console.log(`${name}: ${(timings[name]! / 1000).toFixed(1)} s`);
    return result;
  };

  if (flags.reuse !== undefined && stores.embedded) throw new Error('--reuse needs DATABASE_URL and REDIS_URL: the database a scale preload left');
  const data = flags.reuse !== undefined ? await reused(db, String(flags.reuse)) : await time('preload cards', () => preload(db, { cards, membersPerCard: 1, merchants: 50, balanceMinor: 1_000_000, qrTtlS: 3600 }));
  const { rows: merchants } = await db.raw<{ rows: { id: string }[] }>(`SELECT id FROM merchants WHERE code LIKE ? ORDER BY code`, [`B${data.run}%`.toUpperCase()]);
  const merchantIds = merchants.map((m) => m.id);
  // The settled day sits well in the past, so it is over in every time zone.
  const day = '2026-01-15';
  const adminId = (await createApiKey(db, { role: 'admin', name: 'scale preload' })).row.id;
  if (flags.reuse === undefined) await time('preload transactions', async () => {
    const batch = 500_000;
    // Payment s: card 1 + s mod cards (paid by its owner), a merchant round robin; the first
    // `dayCount` fall on the settled day, the rest spread evenly from 400 days ago to a day ago
    // (an `s % 34000000` seconds spread put all of them in the first ~58 days at 5M).
    const series = `SELECT s, 1 + (s % ${cards}) AS c, (?::uuid[])[1 + (s % ${merchantIds.length})] AS merchant_id, 100 + s % 50000 AS amount,
                           CASE WHEN s < ${dayCount} THEN ?::timestamptz + (s % 86400) * interval '1 second'
                                ELSE now() - interval '400 days' + (s - ${dayCount}) * (interval '399 days' / ${Math.max(1, total - dayCount)}) END AS at
                      FROM generate_series(?::bigint, ?::bigint) s`;
    for (let start = 0; start < total; start += batch) {
      const bindings = [merchantIds, `${day}T00:00:00+08:00`, start, Math.min(start + batch, total) - 1];
      await db.raw(
        `INSERT INTO operations (id, type, status, principal, request_hash, api_key_id, actor_role, merchant_id, card_id, partition, amount_minor, payment_method, created_at, completed_at, result)
         SELECT 'op_s${data.run}_' || s, 'payment', 'succeeded', 'bench', md5(s::text), '${adminId}', 'merchant', merchant_id,
                ${uuidSql(`'bench-${data.run}-c-' || c`)}, 0, amount, 'cash', at, at, '{}' FROM (${series}) g`,
        bindings,
      );
      await db.raw(
        `INSERT INTO transactions (tx_no, type, operation_id, card_id, member_id, merchant_id, raw_amount_minor, final_amount_minor, payment_method, created_at)
         SELECT 'PAYS${data.run.toUpperCase()}' || lpad(s::text, 9, '0'), 'payment', 'op_s${data.run}_' || s, ${uuidSql(`'bench-${data.run}-c-' || c`)},
                ${uuidSql(`'bench-${data.run}-m-' || c || '-0'`)}, merchant_id, amount, amount, 'cash', at FROM (${series}) g`,
        bindings,
      );
      console.log(`  ${Math.min(start + batch, total)} / ${total}`);
    }
    await db.raw('ANALYZE');
  });

  const engine = await startEngine({ DATABASE_URL: databaseUrl, REDIS_URL: redisUrl, QUEUE_PREFIX: `scale${data.run}`, RATE_LIMIT_PER_KEY_PER_MIN: '10000000', RATE_LIMIT_PER_IP_PER_MIN: '10000000', WORKER_METRICS_PORT: '0' });
  const admin = (await createApiKey(db, { role: 'admin', name: 'scale bench' })).key;
  const merchantKey = (await createApiKey(db, { role: 'merchant', merchantId: merchantIds[0]!, name: 'scale bench' })).key;
  const card = (i: number, step: number) => 1 + ((i * step) % cards);
  const payment = (i: number) => `PAYS${data.run.toUpperCase()}${String((i * 15485863) % total).padStart(9, '0')}`;
  const lists = {
    member_transactions: (i: number) => `/v1/members/${memberId(data.run, card(i, 7919))}/transactions?limit=50`,
    card_transactions: (i: number) => `/v1/cards/${data.cardId(card(i, 104729))}/transactions?limit=50`,
    merchant_transactions: () => `/v1/merchant/transactions?limit=50`,
    // The directory (app key) and the admin's lists across tenants (API.md "Directory, keys and reports").
    members_by_phone: (i: number) => `/v1/members?phone=${encodeURIComponent(benchPhone(data.run, 1, card(i, 7919), 0))}`,
    members_by_email: (i: number) => `/v1/members?email=${encodeURIComponent(benchEmail(data.run, card(i, 104729), 0))}`,
    members_by_name_prefix: (i: number) => `/v1/members?q=${encodeURIComponent(`Bench ${card(i, 7919)}`)}&limit=50`,
    members: () => `/v1/members?limit=50`,
    merchants: () => `/v1/merchants?limit=50`,
    cards: () => `/v1/cards?limit=50`,
    cards_of_member: (i: number) => `/v1/cards?member_id=${memberId(data.run, card(i, 7919))}`,
    cards_by_type: () => `/v1/cards?type=voucher&limit=50`,
    transactions: () => `/v1/transactions?limit=50`,
    transactions_of_merchant: (i: number) => `/v1/transactions?merchant_id=${merchantIds[i % merchantIds.length]}&limit=50`,
    transactions_by_type: (i: number) => `/v1/transactions?type=${i % 2 ? 'payment' : 'refund'}&limit=50`,
    transactions_by_tx_no: (i: number) => `/v1/transactions?tx_no=${payment(i)}`,
    operations: () => `/v1/operations?limit=50`,
    operations_stuck: () => `/v1/operations?status=queued&older_than_s=60&limit=50`,
    operations_by_type: (i: number) => `/v1/operations?type=${i % 2 ? 'payment' : 'refund'}&limit=50`,
  };
  const keyOf = (name: string) => (name === 'merchant_transactions' ? merchantKey : name.startsWith('members_by_') && name !== 'members_by_name_prefix' ? data.appKey : admin);
  /** Requests from..from+count-1 of a list by `concurrency` clients; their latencies. */
  const timeList = async (name: string, path: (i: number) => string, concurrency: number, from: number, count: number, key: (i: number) => string = () => keyOf(name)) => {
    const samples: number[] = [];
    let next = from;
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        while (next < from + count) {
          const i = next++;
          const t0 = performance.now();
          const res = await call(`${engine.url}${path(i)}`, 'GET', { authorization: `Bearer ${key(i)}` });
          if (res.status !== 200) throw new Error(`${name}: HTTP ${res.status}`);
          samples.push(performance.now() - t0);
        }
      }),
    );
    return samples;
  };
  const requests = Number(args.requests);
  const concurrencies = args.concurrency.split(',').map(Number);
  // Not recorded: JIT, pooled connections and prepared statements warm up (on other rows than those timed).
  for (const [name, path] of Object.entries(lists)) await timeList(name, path, concurrencies[0]!, requests * concurrencies.length, Number(args['warmup-requests']));
  const latencies: Record<string, Record<string, ReturnType<typeof summarize>>> = {};
  for (const [n, concurrency] of concurrencies.entries()) {
    const byList: Record<string, ReturnType<typeof summarize>> = {};
    for (const [name, path] of Object.entries(lists)) {
      byList[name] = summarize(await timeList(name, path, concurrency, n * requests, requests));
      console.log(`${name}, ${concurrency} clients: ${JSON.stringify(byList[name])}`);
    }
    latencies[`${concurrency}_clients`] = byList;
  }

  // Daily reports: history's refunds and declines and today's traffic, the rollup, then the 31-day report (bench/reports.ts).
  const reports = await benchDailyReports({
    db,
    engineUrl: engine.url,
    adminKey: admin,
    run: data.run,
    merchantIds,
    adminKeyId: adminId,
    cards,
    total,
    dayCount,
    today: args.today === undefined ? undefined : Number(args.today),
    requests,
    concurrencies,
    warmupRequests: Number(args['warmup-requests']),
    timeRequests: (name, path, concurrency, from, count, key) => timeList(name, path, concurrency, from, count, key),
    time,
    timings,
  });
  await engine.stop();

  const settled = await time('settlement of the 100k-transaction day', () => generateSettlements(db, day, 'Asia/Taipei'));
  const settledCount = settled.reduce((n, s) => n + s.payment_count, 0);
  await db.destroy();
  await stores.stop();

  const result = {
    scenario: 'scale',
    cards,
    transactions: total + cards,
    machine: { cpus: cpus().length, model: cpus()[0]?.model, memory_gb: Math.round(totalmem() / 2 ** 30), node: process.version },
    conditions: `${args.requests} requests per list and number of concurrent clients (${args.concurrency}), after ${args['warmup-requests']} not recorded; limit=50; engine (web + worker), Postgres, Redis and client on one machine`,
    list_latency_ms: latencies,
    settlement: { day, payments_settled: settledCount, merchants: settled.length, ms: timings['settlement of the 100k-transaction day'] },
    reports,
    timings_ms: timings,
  };
  mkdirSync(args.out!, { recursive: true });
  const file = join(args.out!, `scale-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
  writeFileSync(file, JSON.stringify(result, null, 2));
  console.log(JSON.stringify(result, null, 2));
  console.log(`results: ${file}`);
}

/** What the lists need of an earlier run's preload (its cards, `--cards` of them, are named by the run id). */
async function reused(db: Knex, run: string): Promise<Pick<Preload, 'run' | 'cardId' | 'appKey'>> {
  return { run, cardId: (c) => md5Uuid(`bench-${run}-c-${c}`), appKey: (await createApiKey(db, { role: 'app', name: 'scale bench' })).key };
}

/** The owner of preloaded card c, as bench/preload.ts names it: Postgres md5(text)::uuid. */
function memberId(run: string, c: number): string {
  return md5Uuid(`bench-${run}-m-${c}-0`);
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
