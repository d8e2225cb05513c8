import { spawnSync } from 'node:child_process';
import { cpus, loadavg, totalmem } from 'node:os';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { createKnex, migrateLatest } from '../db/knex.js';
import { benchStores, sampleProcess, startEngine, startNpmStart } from './engine.js';
import { checkInvariants } from './invariants.js';
import { LoadGenerator, closedLoop, isDecline, openLoop, type Action } from './load.js';
import { runPgbench } from './pgbench.js';
import { preload } from './preload.js';
import { storeCostPerCharge, storeSnapshot } from './store-cost.js';
import { latencySvg, summarize, type SecondSample } from './stats.js';

/** Load after the ANALYZE, not recorded: the connections replan what it invalidated. */
const REWARM_S = 2;
const { values: args } = parseArgs({
  options: {
    scenario: { type: 'string', default: 'mixed' }, // mixed | hot-card | burst
    loop: { type: 'string', default: 'closed' }, // closed | open
    terminals: { type: 'string', default: '64' },
    rate: { type: 'string', default: '200' },
    duration: { type: 'string', default: '60' },
    // Load before the measured run, not recorded: JIT, pooled connections and their prepared statements warm up.
    warmup: { type: 'string', default: '5' },
    cards: { type: 'string', default: '10000' },
    mode: { type: 'string', default: 'wait' }, // wait | poll
    // pre: charges present preloaded QR tokens; fresh: the till flow, the member app issues a QR for each charge.
    qr: { type: 'string', default: 'pre' },
    // procfile: web and worker processes as the Procfile runs them; npm-start: dev/start.ts, as `npm start` runs them.
    engine: { type: 'string', default: 'procfile' },
    // The engine's LOG_LEVEL (warn; npm start's own default is info, a line per request and per operation).
    'log-level': { type: 'string', default: 'warn' },
    partitions: { type: 'string', default: '16' },
    // Engine processes: worker processes and web processes (the load is spread over the webs).
    workers: { type: 'string', default: '1' },
    webs: { type: 'string', default: '1' },
    'skip-pgbench': { type: 'boolean', default: false },
    out: { type: 'string', default: 'bench/results' },
    // scale only (bench/scale.ts reads them)
    transactions: { type: 'string' },
    day: { type: 'string' },
    requests: { type: 'string' },
    concurrency: { type: 'string' },
    'warmup-requests': { type: 'string' },
    today: { type: 'string' },
    reuse: { type: 'string' },
    // purge only (bench/purge.ts reads them)
    rows: { type: 'string' },
    batch: { type: 'string' },
    pause: { type: 'string' },
    baseline: { type: 'string' },
  },
});

const MIXES: Record<string, Record<Action, number>> = {
  mixed: { charge: 0.9, refund: 0.05, recharge: 0.05 },
  'hot-card': { charge: 1, refund: 0, recharge: 0 },
  burst: { charge: 0.9, refund: 0.05, recharge: 0.05 },
};

function positive(name: 'workers' | 'webs'): number {
  const n = Number(args[name]);
  if (!Number.isInteger(n) || n < 1) throw new Error(`--${name} must be a whole number ≥ 1`);
  return n;
}

async function main() {
  const scenario = args.scenario!;
  if (scenario === 'scale' || scenario === 'purge') {
    await import(scenario === 'scale' ? './scale.js' : './purge.js');
    return;
  }
  const mix = MIXES[scenario];
  if (!mix) throw new Error(`unknown scenario ${scenario}; use mixed, hot-card, burst, scale or purge`);
  const qr = args.qr!;
  if (qr !== 'pre' && qr !== 'fresh') throw new Error(`--qr must be pre or fresh, not ${qr}`);
  const engineKind = args.engine!;
  if (engineKind !== 'procfile' && engineKind !== 'npm-start') throw new Error(`--engine must be procfile or npm-start, not ${engineKind}`);
  const duration = Number(args.duration);
  const rate = Number(args.rate);
  const terminals = Number(args.terminals);
  const loop = scenario === 'burst' ? 'open' : args.loop!;
  const hot = scenario === 'hot-card';
  const cards = hot ? 3 : Number(args.cards);
  // Enough fresh QR tokens per card for the whole run: generous, they are cheap rows.
  const warmup = Number(args.warmup);
  const warmupTotal = warmup > 0 ? warmup + REWARM_S : 0;
  const expected = loop === 'open' ? rate * duration * (scenario === 'burst' ? 1.5 : 1) + rate * warmupTotal : 1500 * (duration + warmupTotal);
  // Fresh QRs need members enough that no two terminals pay with one (card, member) at once.
  const membersPerCard = qr === 'fresh' ? Math.max(4, Math.ceil((4 * (loop === 'closed' ? terminals : rate)) / cards)) : Math.max(4, Math.ceil((expected * mix.charge * 1.5) / cards));

  const stores = await benchStores('bench');
  const { databaseUrl, redisUrl } = stores;
  const db = createKnex(databaseUrl, 4, () => undefined);
  await migrateLatest(db);
  console.log(`preloading ${cards} cards × ${membersPerCard} members${qr === 'pre' ? ' (one fresh QR each)' : ''} …`);
  const t0 = Date.now();
  const data = await preload(db, { cards, membersPerCard, merchants: 20, balanceMinor: hot ? 100_000_000 : 5_000_000, qrTtlS: 3600, qrTokens: qr === 'pre' });
  console.log(`preloaded in ${((Date.now() - t0) / 1000).toFixed(1)} s`);

  const shape = { workers: positive('workers'), webs: positive('webs') };
  if (engineKind === 'npm-start' && shape.webs !== 1) throw new Error('--engine npm-start runs one web process');
  const engineEnv = {
    DATABASE_URL: databaseUrl,
    REDIS_URL: redisUrl,
    QUEUE_PREFIX: `bench${data.run}`,
    CARD_PARTITIONS: args.partitions!,
    LOG_LEVEL: args['log-level']!,
    RATE_LIMIT_PER_KEY_PER_MIN: '10000000',
    RATE_LIMIT_PER_IP_PER_MIN: '10000000',
    RATE_LIMIT_PAYMENT_PER_KEY_PER_MIN: '10000000',
    RATE_LIMIT_QR_ISSUE_PER_CARD_PER_MIN: '10000000',
  };
  mkdirSync(args.out!, { recursive: true });
  const name = `${scenario}-${loop}${qr === 'fresh' ? '-qr-fresh' : ''}${engineKind === 'npm-start' ? '-npm-start' : ''}-${new Date().toISOString().replace(/[:.]/g, '-')}`;
  // Below warn the engine logs a line per request: to a file beside the results, not this terminal.
  const output = ['warn', 'error', 'fatal', 'silent'].includes(args['log-level']!) ? {} : { logFile: join(args.out!, `${name}-engine.log`) };
  const engine = engineKind === 'npm-start' ? await startNpmStart(engineEnv, shape.workers, output) : await startEngine(engineEnv, shape, output);
  console.log(`engine (${engineKind}): ${engine.processes.map((p) => `${p.name} pid ${p.pid}`).join(', ')}`);
  const gen = new LoadGenerator({ urls: engine.urls, preload: data, hotCards: hot ? [1, 2, 3] : undefined, mix, mode: args.mode as 'wait' | 'poll', qr });

  const warmUp = async (seconds: number) => {
    if (loop === 'closed') await closedLoop(gen, terminals, seconds);
    else await openLoop(gen, () => rate, seconds);
    gen.reset();
  };
  if (warmup > 0) {
    console.log(`warming up for ${warmup} s (not recorded) …`);
    await warmUp(warmup);
  }
  // Statistics of the load's own rows, as autovacuum keeps them in a running system: planned on the
  // preload's alone (recharges, no payments) a refund's lookup walked every payment by type.
  await db.raw('ANALYZE');
  // ANALYZE drops every cached plan of the tables it read: without load after it, the first second
  // measured replanned every statement on every connection (open loop 400/s: p99 285 ms in it, 16–104 after).
  if (warmup > 0) await warmUp(REWARM_S);

  const resources: { t: number; cpuS: Record<string, number>; rssMb: Record<string, number> }[] = [];
  const sampler = setInterval(() => {
    const cpu: Record<string, number> = {};
    const rss: Record<string, number> = {};
    for (const p of engine.processes) {
      const s = sampleProcess(p.pid);
      cpu[p.name] = s.cpuS;
      rss[p.name] = s.rssMb;
    }
    resources.push({ t: gen.elapsedS(), cpuS: cpu, rssMb: rss });
  }, 1000);

  console.log(`${scenario}: ${loop} loop, ${loop === 'closed' ? `${terminals} terminals` : `${rate}/s`}, ${duration} s, mode ${args.mode}, qr ${qr} …`);
  const storesBefore = await storeSnapshot(db, redisUrl);
  const measuredFrom = new Date();
  const loadBefore = loadavg();
  const loadStart = gen.elapsedS();
  const generatorCpu = process.cpuUsage();
  let skipped = 0;
  if (loop === 'closed') await closedLoop(gen, terminals, duration);
  else {
    const burstAt = duration / 2 - 2.5;
    const rateAt = (s: number) => (scenario === 'burst' && s >= burstAt && s < burstAt + 5 ? rate * 10 : rate);
    skipped = (await openLoop(gen, rateAt, duration)).skipped;
  }
  const loadSeconds = gen.elapsedS() - loadStart;
  const storesAfter = await storeSnapshot(db, redisUrl);
  const loadAfter = loadavg();
  const { user, system } = process.cpuUsage(generatorCpu);
  const generatorCpuPercent = Math.round((user + system) / 1e4 / loadSeconds);
  clearInterval(sampler);

  const invariants = await checkInvariants(db, 60_000);
  // Where the time goes, by Postgres timestamps: accepted → picked up by a worker → terminal.
  const { rows: timeline } = await db.raw<{ rows: Record<string, number>[] }>(
    `SELECT round(percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM started_at - created_at) * 1000)::numeric, 1) AS queue_wait_p50_ms,
            round(percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM started_at - created_at) * 1000)::numeric, 1) AS queue_wait_p99_ms,
            round(percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM completed_at - started_at) * 1000)::numeric, 1) AS processing_p50_ms,
            round(percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM completed_at - started_at) * 1000)::numeric, 1) AS processing_p99_ms,
            round(max(extract(epoch FROM completed_at - created_at) * 1000)::numeric, 1) AS accept_to_done_max_ms
       FROM operations WHERE type = 'payment' AND started_at IS NOT NULL AND completed_at IS NOT NULL AND principal LIKE 'merchant:%'`,
  );
  // Operations a worker applied per transaction: one batch's operations end at its transaction's
  // now(). Only those of the measured load: the preload's rows share one completed_at.
  const { rows: batching } = await db.raw<{ rows: { ops_per_worker_transaction: string }[] }>(
    `SELECT round(count(*)::numeric / nullif(count(DISTINCT (partition, completed_at)), 0), 2) AS ops_per_worker_transaction
       FROM operations WHERE completed_at IS NOT NULL AND created_at >= ?`,
    [measuredFrom],
  );
  let pgbench: Awaited<ReturnType<typeof runPgbench>> | undefined;
  if (!args['skip-pgbench'] && spawnSync('pgbench', ['--version']).status === 0) pgbench = await runPgbench(db, databaseUrl, Math.min(duration, 30));
  await engine.stop();
  await db.destroy();
  await stores.stop();

  const charges = gen.samples.filter((s) => s.action === 'charge');
  const chargesDone = charges.filter((s) => s.outcome === 'succeeded' || isDecline(s.outcome));
  const outcomes: Record<string, number> = {};
  for (const s of gen.samples) outcomes[`${s.action}:${s.outcome}`] = (outcomes[`${s.action}:${s.outcome}`] ?? 0) + 1;
  const errors = gen.samples.filter((s) => s.outcome !== 'succeeded' && !isDecline(s.outcome)).length;
  const first = resources[0];
  const last = resources[resources.length - 1];
  const cpu = Object.fromEntries(Object.keys(last?.cpuS ?? {}).map((p) => [p, last && first ? Math.round(((last.cpuS[p]! - first.cpuS[p]!) / (last.t - first.t)) * 100) : 0]));
  const peakRss = Object.fromEntries(Object.keys(last?.rssMb ?? {}).map((p) => [p, Math.round(Math.max(...resources.map((r) => r.rssMb[p] ?? 0)))]));
  const engineRate = chargesDone.length / loadSeconds;

  const perSecond: SecondSample[] = [];
  for (let s = 0; s < Math.ceil(loadSeconds); s++) {
    const inSecond = charges.filter((c) => c.startS - loadStart >= s && c.startS - loadStart < s + 1).map((c) => c.finalMs);
    const sum = summarize(inSecond);
    perSecond.push({ second: s, completed: inSecond.length, p50: sum.p50, p99: sum.p99 });
  }

  const result = {
    scenario,
    loop,
    mode: args.mode,
    qr,
    engine: engineKind,
    log_level: args['log-level'],
    terminals: loop === 'closed' ? terminals : undefined,
    rate: loop === 'open' ? rate : undefined,
    duration_s: Math.round(loadSeconds * 10) / 10,
    warmup_s: warmup,
    cards,
    partitions: Number(args.partitions),
    processes: engineKind === 'npm-start' ? { ...shape, scheduler: 1 } : shape,
    machine: { cpus: cpus().length, model: cpus()[0]?.model, memory_gb: Math.round(totalmem() / 2 ** 30), node: process.version },
    // The machine's 1, 5 and 15 minute load averages when the measured load began and ended (others' work shows here).
    load_average: { before: loadBefore.map((n) => Math.round(n * 100) / 100), after: loadAfter.map((n) => Math.round(n * 100) / 100) },
    conditions: `engine (${engineKind === 'npm-start' ? 'npm start: its web, worker and scheduler processes' : 'web + worker processes'}), Postgres, Redis and this load generator on the same machine`,
    charges_completed_per_s: Math.round(engineRate * 10) / 10,
    charges_succeeded_per_s: Math.round((charges.filter((s) => s.outcome === 'succeeded').length / loadSeconds) * 10) / 10,
    charge_accept_ms: summarize(charges.map((s) => s.acceptMs)),
    charge_submit_to_final_ms: summarize(charges.map((s) => s.finalMs)),
    // --qr fresh: the member app's QR issue, and the whole till flow (issue, then charge to final).
    ...(qr === 'fresh' ? { qr_issue_ms: summarize(charges.map((s) => s.qrMs ?? 0)), till_flow_ms: summarize(charges.map((s) => (s.qrMs ?? 0) + s.finalMs)) } : {}),
    outcomes,
    errors_other_than_declines: errors,
    skipped_open_loop: skipped,
    qr_pool_exhausted: gen.exhausted,
    engine_cpu_percent: cpu,
    engine_peak_rss_mb: peakRss,
    load_generator_cpu_percent: generatorCpuPercent,
    operation_timeline_ms: Object.fromEntries(Object.entries(timeline[0] ?? {}).map(([k, v]) => [k, Number(v)])),
    operations_per_worker_transaction: Number(batching[0]?.ops_per_worker_transaction ?? 0),
    // Where a charge's cost lands, per completed charge: CPU ms by process (the engine's from its samples), Postgres's writes.
    per_charge: (() => {
      const { postgres_cpu_ms, redis_cpu_ms, redis_calls, ...writes } = storeCostPerCharge(storesBefore, storesAfter, chargesDone.length);
      const ms = (percent: number) => Math.round((percent * 10 * 100) / engineRate) / 100;
      const engineMs = Object.fromEntries(Object.entries(cpu).map(([p, percent]) => [p, ms(percent)]));
      return { cpu_ms: { ...engineMs, postgres: postgres_cpu_ms, redis: redis_cpu_ms, load_generator: ms(generatorCpuPercent) }, postgres: writes, redis_calls };
    })(),
    invariants,
    pgbench: pgbench ? { ...pgbench, ratio_engine_to_pgbench: Math.round((engineRate / pgbench.tps) * 1000) / 1000 } : args['skip-pgbench'] ? 'skipped' : 'pgbench not found',
  };
  writeFileSync(join(args.out!, `${name}.json`), JSON.stringify({ ...result, per_second: perSecond }, null, 2));
  writeFileSync(join(args.out!, `${name}.svg`), latencySvg(`${scenario} ${loop}: charge submit-to-final latency and completions per second`, perSecond));
  console.log(JSON.stringify(result, null, 2));
  console.log(`results: ${join(args.out!, name)}.{json,svg}`);
  if (!invariants.ok) {
    console.error('INVARIANT BROKEN — see "invariants" above');
    process.exit(1);
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
