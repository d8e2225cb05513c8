import { cpus, loadavg, totalmem } from 'node:os';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { createKnex, migrateLatest } from '../db/knex.js';
import { purgeFailedOperations } from '../db/queries/retention.js';
import { runInBatches } from '../jobs/batches.js';
import { benchStores, startEngine } from './engine.js';
import { LoadGenerator, openLoop } from './load.js';
import { preload } from './preload.js';
import { summarize } from './stats.js';

/**
 * `purge`: the retention purge of 1,000,000 old operations while payments run. The old rows (failed
 * operations eight years old, past the 7-year OPERATION_RETENTION_DAYS) are made with generate_series;
 * the purge is the cleanup job's own step (the same statement and batch runner), timed per batch;
 * payments run open-loop before (baseline) and during it, measured submit to final.
 */
const { values: flags } = parseArgs({
  strict: false,
  options: {
    rows: { type: 'string', default: '1000000' },
    batch: { type: 'string', default: '5000' },
    pause: { type: 'string', default: '100' },
    rate: { type: 'string', default: '50' },
    baseline: { type: 'string', default: '15' },
    out: { type: 'string', default: 'bench/results' },
  },
});
const args = Object.fromEntries(Object.entries(flags).map(([k, v]) => [k, String(v)])) as Record<'rows' | 'batch' | 'pause' | 'rate' | 'baseline' | 'out', string>;

async function main() {
  const rows = Number(args.rows);
  const batchSize = Number(args.batch);
  const rate = Number(args.rate);
  const baselineS = Number(args.baseline);
  const stores = await benchStores('purge');
  const db = createKnex(stores.databaseUrl, 4, () => undefined);
  await migrateLatest(db);

  // Enough single-use QR tokens for the whole run at `rate` (baseline, warm-up, and a purge of up to ~3 min).
  const cards = 1000;
  const data = await preload(db, { cards, membersPerCard: Math.ceil((rate * (baselineS + 5 + 180) * 1.5) / cards) + 1, merchants: 10, balanceMinor: 50_000_000, qrTtlS: 3600 });
  console.log(`inserting ${rows} failed operations eight years old …`);
  let t0 = performance.now();
  await db.raw(
    `INSERT INTO operations (id, type, status, principal, request_hash, api_key_id, actor_role, partition, amount_minor, error_code, error_message, created_at, completed_at)
     SELECT 'op_' || md5('old-' || g), 'payment', 'failed', 'merchant:bench', md5(g::text), gen_random_uuid(), 'merchant', g % 16, 1000, 'INSUFFICIENT_BALANCE', 'bench',
            now() - interval '8 years' + make_interval(secs => g), now() - interval '8 years' + make_interval(secs => g)
       FROM generate_series(1, ?) g`,
    [rows],
  );
  await db.raw('VACUUM ANALYZE operations');
  console.log(`inserted in ${((performance.now() - t0) / 1000).toFixed(1)} s`);

  const engine = await startEngine({
    DATABASE_URL: stores.databaseUrl,
    REDIS_URL: stores.redisUrl,
    QUEUE_PREFIX: `purge${data.run}`,
    RATE_LIMIT_PER_KEY_PER_MIN: '10000000',
    RATE_LIMIT_PER_IP_PER_MIN: '10000000',
    RATE_LIMIT_PAYMENT_PER_KEY_PER_MIN: '10000000',
  });
  const gen = new LoadGenerator({ urls: engine.urls, preload: data, mix: { charge: 1, refund: 0, recharge: 0 }, mode: 'wait' });
  await openLoop(gen, () => rate, 5); // warm-up, not recorded
  gen.reset();
  console.log(`baseline: ${rate} payments/s for ${baselineS} s …`);
  await openLoop(gen, () => rate, baselineS);
  const baselineEnd = gen.elapsedS();

  console.log(`purging in batches of ${batchSize} while ${rate} payments/s run …`);
  const batchMs: number[] = [];
  let purging = true;
  const load = (async () => {
    while (purging) await openLoop(gen, () => rate, 1);
  })();
  const purgeStart = gen.elapsedS();
  t0 = performance.now();
  const report = await runInBatches(
    [
      {
        name: 'failedOperations',
        run: async (limit) => {
          const started = performance.now();
          const n = await purgeFailedOperations(db, 7 * 365, limit);
          batchMs.push(performance.now() - started);
          return n;
        },
      },
    ],
    { batchSize, budgetMs: 3_600_000, pauseMs: Number(args.pause) },
  );
  const purgeS = (performance.now() - t0) / 1000;
  const purgeEnd = gen.elapsedS();
  purging = false;
  await load;
  await engine.stop();
  const { rows: left } = await db.raw<{ rows: { n: number }[] }>(`SELECT count(*)::bigint AS n FROM operations WHERE principal = 'merchant:bench'`);
  await db.destroy();
  await stores.stop();

  const charges = (from: number, to: number) => gen.samples.filter((s) => s.action === 'charge' && s.startS >= from && s.startS < to);
  const during = charges(purgeStart, purgeEnd);
  const step = report.failedOperations!;
  const result = {
    scenario: 'purge',
    rows_purged: step.rows,
    rows_left: left[0]!.n,
    batch_size: batchSize,
    pause_ms: Number(args.pause),
    batches: step.batches,
    purge_s: Math.round(purgeS * 10) / 10,
    rows_per_s: Math.round(step.rows / purgeS),
    batch_statement_ms: summarize(batchMs),
    payments_per_s_offered: rate,
    payment_submit_to_final_ms_baseline: summarize(charges(0, baselineEnd).map((s) => s.finalMs)),
    payment_submit_to_final_ms_during_purge: summarize(during.map((s) => s.finalMs)),
    payment_outcomes_during_purge: Object.fromEntries([...new Set(during.map((s) => s.outcome))].map((o) => [o, during.filter((s) => s.outcome === o).length])),
    machine: { cpus: cpus().length, model: cpus()[0]?.model, memory_gb: Math.round(totalmem() / 2 ** 30), node: process.version, loadavg_at_end: loadavg().map((l) => Math.round(l * 10) / 10) },
    conditions: 'engine (web + worker processes), Postgres, Redis, the load generator and the purge on the same machine',
  };
  mkdirSync(args.out, { recursive: true });
  const file = join(args.out, `purge-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
  writeFileSync(file, JSON.stringify(result, null, 2));
  console.log(JSON.stringify(result, null, 2));
  console.log(`results: ${file}`);
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
