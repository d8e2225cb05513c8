import type { Knex } from 'knex';
import { preload, type Preload } from '../../../bench/preload.js';
import knexFactory from 'knex';
import '../../../db/knex.js'; // its pg type parsers (int8 as numbers) apply to the harness's reads too
import { Engine, type Role } from './engine.js';
import { checkInvariants, waitAllTerminal, type InvariantResult } from './invariants.js';
import { PosClients, PosLoad, type Kind } from './load.js';
import { FaultProxy } from './proxy.js';
import { onExit, sharedServers, TEMPLATE_DB, type SharedServers } from './suite.js';

/** How long after recovery every accepted operation must be terminal (the issue's bound). */
export const TERMINAL_BOUND_MS = 60_000;

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export interface ScenarioContext {
  servers: SharedServers;
  engine: Engine;
  /** Direct to the scenario's database (never through a fault proxy). */
  db: Knex;
  data: Preload;
  clients: PosClients;
  load: PosLoad;
  proxies?: { pg: FaultProxy; redis: FaultProxy };
  /** The engine's QUEUE_PREFIX (BullMQ keys), for looking at job state directly. */
  queuePrefix: string;
  /** Adds a line to the scenario's timeline ("+4.1 s redis SIGKILL"). */
  note(message: string): void;
  /**
   * A timeline line for a moment of harm (a kill, a flush, a cut): the report adds how many
   * operations were open at that moment and how long until every operation accepted before it
   * was terminal.
   */
  harm(message: string): Promise<void>;
  /** Open operations right now by SQL, or -1 when Postgres cannot answer. */
  openOperations(): Promise<number>;
  /** Seconds since the load started. */
  elapsedS(): number;
  rng: () => number;
}

export interface ScenarioSpec {
  title: string;
  workers?: number;
  env?: Record<string, string>;
  clock?: Partial<Record<Role, string>>;
  /** Route the engine's Postgres and Redis connections through fault proxies. */
  proxies?: boolean;
  cards?: number;
  members?: number;
  balanceMinor?: number;
  qrTtlS?: number;
  hotCards?: number;
  hotShare?: number;
  ratePerS?: number;
  maxInFlight?: number;
  mix?: Record<Kind, number>;
  attemptTimeoutMs?: number;
  /** How long a client retries one request before giving up (default 45 s). */
  giveUpMs?: number;
  waitS?: number;
  warmupMs?: number;
  /** Load after the fault is over, before the load stops. */
  afterMs?: number;
  rng?: () => number;
  setup?(ctx: ScenarioContext): Promise<void>;
  /** Injects the fault and undoes it; resolves when the fault is over (the system may still be recovering). */
  fault(ctx: ScenarioContext): Promise<void>;
  /** Extra checks after the invariants; push problems to `problems`. */
  verify?(ctx: ScenarioContext, problems: string[]): Promise<void>;
}

export interface ScenarioReport {
  title: string;
  ok: boolean;
  problems: string[];
  timeline: string[];
  invariants?: InvariantResult;
  durationS: number;
  counts: Record<string, unknown>;
}

const reports: ScenarioReport[] = [];

// A root-level hook (loaded while mocha reads the spec files): one line per scenario at the end of the run.
if (typeof after === 'function') {
  after(() => {
    if (!reports.length) return;
    console.log('\n  fault suite summary (scenario: held? accepted, succeeded, client retries, time to recover, seconds):');
    for (const r of reports) {
      const c = r.counts as { accepted?: number; succeeded?: number; client_retries?: number; recover_s?: number };
      console.log(`    ${r.ok ? 'held  ' : 'BROKEN'} ${r.title.slice(0, 70).padEnd(70)} accepted ${c.accepted ?? '?'}, succeeded ${c.succeeded ?? '?'}, retries ${c.client_retries ?? '?'}, recover ${c.recover_s?.toFixed(1) ?? '?'} s, ${r.durationS.toFixed(0)} s`);
    }
  });
}

let counter = 0;

function fmtMap(m: Map<string, number> | Record<string, number>): string {
  const entries = m instanceof Map ? [...m.entries()] : Object.entries(m);
  return entries.length ? entries.sort((a, b) => b[1] - a[1]).map(([k, v]) => `${k} ×${v}`).join(', ') : 'none';
}

/**
 * One fault scenario: a fresh database (copied from the migrated template) with preloaded cards,
 * the engine as separate processes, steady POS load, the fault, recovery, then every invariant by
 * SQL. Prints what was injected and what was found; the returned report says whether it held.
 */
export async function runScenario(spec: ScenarioSpec): Promise<ScenarioReport> {
  const t0 = Date.now();
  const servers = await sharedServers();
  const { pg, redis } = servers;
  // Whatever the previous scenario did to the servers, this one starts from healthy ones.
  if (!pg.running) await pg.start();
  if (!redis.running) await redis.start();
  const n = ++counter;
  const database = `faults_${n}_${Date.now().toString(36)}`;
  const queuePrefix = `f${n}${Date.now().toString(36)}`;
  await pg.admin((c) => c.query(`CREATE DATABASE ${database} TEMPLATE ${TEMPLATE_DB}`));
  const db = harnessKnex(pg.url(database));
  const timeline: string[] = [];
  const problems: string[] = [];
  let engine: Engine | undefined;
  let proxies: { pg: FaultProxy; redis: FaultProxy } | undefined;
  let loadStart = 0;
  const elapsedS = () => (loadStart ? (Date.now() - loadStart) / 1000 : 0);
  const note = (message: string) => timeline.push(loadStart ? `+${elapsedS().toFixed(1)} s ${message}` : `setup: ${message}`);
  const watch = new RecoveryWatch(db);
  const harm = async (message: string) => {
    const point = await watch.add();
    note(message);
    point.line = timeline.length - 1;
  };
  const unregister = onExit(() => engine?.killAll());
  const rng = spec.rng ?? Math.random;
  const report: ScenarioReport = { title: spec.title, ok: false, problems, timeline, durationS: 0, counts: {} };
  try {
    const cards = spec.cards ?? 300;
    const data = await preload(db, { cards, membersPerCard: spec.members ?? 10, merchants: 3, balanceMinor: spec.balanceMinor ?? 500_000, qrTtlS: spec.qrTtlS ?? 900 });
    if (spec.proxies) proxies = { pg: await FaultProxy.start('postgres', pg.port), redis: await FaultProxy.start('redis', redis.port) };
    const databaseUrl = proxies ? pg.url(database).replace(`:${pg.port}/`, `:${proxies.pg.port}/`) : pg.url(database);
    const redisUrl = proxies ? `redis://127.0.0.1:${proxies.redis.port}` : redis.url;
    engine = await Engine.start({ databaseUrl, redisUrl, queuePrefix, workers: spec.workers ?? 1, env: spec.env, clock: spec.clock });
    const running = engine;
    const clients = new PosClients({ url: () => running.url, attemptTimeoutMs: spec.attemptTimeoutMs ?? 5000, giveUpMs: spec.giveUpMs ?? 45_000, waitS: spec.waitS ?? 3 });
    const hot = Array.from({ length: spec.hotCards ?? 5 }, (_, i) => i + 1);
    const load = new PosLoad(clients, { data, ratePerS: spec.ratePerS ?? 40, maxInFlight: spec.maxInFlight ?? 250, hotCards: hot, hotShare: spec.hotShare ?? 0.3, mix: spec.mix ?? { payment: 0.6, refund: 0.2, recharge: 0.2 }, rng });
    const ctx: ScenarioContext = {
      servers,
      engine: running,
      db,
      data,
      clients,
      load,
      proxies,
      queuePrefix,
      note,
      harm,
      elapsedS,
      rng,
      openOperations: async () => {
        try {
          return Number((await db('operations').whereNotIn('status', ['succeeded', 'failed']).count<{ count: string }[]>('* as count'))[0]!.count);
        } catch {
          return -1;
        }
      },
    };
    await spec.setup?.(ctx);
    const bootS = (Date.now() - t0) / 1000;
    loadStart = Date.now();
    load.start();
    note(`load started (${spec.ratePerS ?? 40} req/s, ${cards} cards, ${hot.length} hot)`);
    await sleep(spec.warmupMs ?? 3000);

    watch.start();
    const faultStart = Date.now();
    note(`fault begins (${await ctx.openOperations()} operations open)`);
    await spec.fault(ctx);
    const faultEnd = Date.now();
    const endPoint = await watch.add();
    note('fault over');
    endPoint.line = timeline.length - 1;
    await sleep(spec.afterMs ?? 6000);
    note(`load stopping (${load.pending} requests in flight)`);
    await load.stop();
    note('load stopped');

    const acceptedIds = [...clients.accepted.keys()];
    // The bound runs from the end of the fault (the system has recovered), and leaves at least 15 s for what was accepted last.
    const boundMs = Math.max(faultEnd + TERMINAL_BOUND_MS - Date.now(), 15_000);
    const drain = await waitAllTerminal(db, acceptedIds, boundMs);
    note(`all operations terminal: ${drain.open === 0 ? 'yes' : `NO, ${drain.open} open`} (${(drain.ms / 1000).toFixed(1)} s after the load stopped)`);
    const invariants = await checkInvariants(db, clients);
    report.invariants = invariants;

    await watch.poll();
    watch.stop();
    const redriven = Number((await db('operations').where('attempts', '>', 1).count<{ count: string }[]>('* as count'))[0]!.count);
    const harmRecoveries: number[] = [];
    for (const p of watch.points) {
      const doneS = p.doneAt === undefined ? Number.NaN : (p.doneAt - p.at) / 1000;
      if (p !== endPoint) harmRecoveries.push(doneS);
      if (p.line !== undefined) timeline[p.line] += ` [${p.open < 0 ? '?' : p.open} operations open; all accepted before it terminal ${doneS.toFixed(1)} s later]`;
    }
    const recoverS = endPoint.doneAt === undefined ? Number.NaN : (endPoint.doneAt - endPoint.at) / 1000;
    const { rows: outcomes } = await db.raw<{ rows: { type: string; status: string; code: string | null; n: string }[] }>(
      `SELECT type, status, error_code AS code, count(*) AS n FROM operations WHERE id NOT LIKE 'op\\_bench-%' GROUP BY 1, 2, 3 ORDER BY 1, 2, 3`,
    );
    const succeeded = outcomes.filter((o) => o.status === 'succeeded').reduce((s, o) => s + Number(o.n), 0);
    const failedByCode: Record<string, number> = {};
    for (const o of outcomes) if (o.status === 'failed') failedByCode[`${o.type}:${o.code}`] = (failedByCode[`${o.type}:${o.code}`] ?? 0) + Number(o.n);
    const total = outcomes.reduce((s, o) => s + Number(o.n), 0);
    const { rows: otherAudit } = await db.raw<{ rows: { action: string; n: string }[] }>(
      `SELECT action, count(*) AS n FROM audit_events WHERE action NOT IN ('payment.succeeded', 'payment.failed', 'refund.succeeded', 'refund.failed', 'recharge.succeeded', 'recharge.failed') GROUP BY 1`,
    );
    const s = clients.stats;
    report.counts = {
      requests: s.requests,
      accepted: clients.accepted.size,
      operations_in_postgres: total,
      succeeded,
      failed_by_code: failedByCode,
      client_retries: s.retried,
      network_errors: s.networkErrors,
      timeouts: s.timeouts,
      server_errors: Object.fromEntries(s.serverErrors),
      rejected_4xx: Object.fromEntries(s.rejected),
      gave_up: s.gaveUp,
      redriven_attempts_gt_1: redriven,
      reconciler_reenqueued: running.reenqueued(),
      fault_s: (faultEnd - faultStart) / 1000,
      recover_s: recoverS,
      harm_recover_s: harmRecoveries,
      drain_after_load_s: drain.ms / 1000,
      boot_s: bootS,
    };

    if (drain.open !== 0) problems.push(`${drain.open} operations were still open ${((Date.now() - faultEnd) / 1000).toFixed(0)} s after the fault was over (bound ${TERMINAL_BOUND_MS / 1000} s)`);
    const slowest = Math.max(recoverS, ...harmRecoveries);
    if (Number.isNaN(slowest) || [recoverS, ...harmRecoveries].some(Number.isNaN)) problems.push('some operation accepted before a fault never became terminal during the run');
    else if (slowest > TERMINAL_BOUND_MS / 1000) problems.push(`recovery took ${slowest.toFixed(1)} s (bound ${TERMINAL_BOUND_MS / 1000} s)`);
    for (const [name, count] of Object.entries(invariants.checks)) {
      if (count) problems.push(`invariant ${name}: ${count} (e.g. ${JSON.stringify(invariants.examples[name] ?? [])})`);
    }
    if (clients.accepted.size === 0) problems.push('no operation was accepted: the load did not run');
    await spec.verify?.(ctx, problems);
    report.ok = problems.length === 0;

    const lines = [
      `  ── ${spec.title}`,
      ...timeline.map((t) => `     ${t}`),
      `     load: ${s.requests} requests (payment ${load.issued.payment}, refund ${load.issued.refund}, recharge ${load.issued.recharge}), ${clients.accepted.size} accepted; client retries ${s.retried} (network errors ${s.networkErrors}, timeouts ${s.timeouts}, 5xx/429: ${fmtMap(s.serverErrors)}); gave up ${s.gaveUp}; other 4xx: ${fmtMap(s.rejected)}`,
      `     outcome: ${total} operations, ${succeeded} succeeded, failed: ${fmtMap(failedByCode)}`,
      `     recovery: fault lasted ${((faultEnd - faultStart) / 1000).toFixed(1)} s; time to recover (fault over → every operation accepted before it terminal) ${recoverS.toFixed(1)} s; ${redriven} operations with a failed attempt before the one that applied them (attempts > 1); reconciler re-enqueued ${running.reenqueued()} (a count of re-adds, see docs/reliability.md); drain after load ${(drain.ms / 1000).toFixed(1)} s`,
      `     invariants: ${Object.keys(invariants.checks).length} checks ${invariants.ok ? 'hold' : 'BROKEN'}; audit chain ${invariants.audit.ok ? 'verifies' : `BROKEN at ${invariants.audit.first_broken_id}`} (${invariants.audit.checked} events; besides operations: ${fmtMap(Object.fromEntries(otherAudit.map((a) => [a.action, Number(a.n)])))})`,
      ...problems.map((p) => `     PROBLEM: ${p}`),
    ];
    console.log(lines.join('\n'));
  } catch (err) {
    problems.push(`scenario error: ${(err as Error).stack ?? err}`);
  } finally {
    watch.stop();
    if (!report.ok && engine) {
      for (const p of engine.all()) console.log(`     --- last log lines of ${p.name} (exits: ${JSON.stringify(p.exits)}):\n${p.tail.slice(-15).map((l) => `       ${l}`).join('\n')}`);
    }
    await engine?.stop().catch(() => undefined);
    await proxies?.pg.close();
    await proxies?.redis.close();
    await db.destroy();
    await pg.admin((c) => c.query(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`)).catch(() => undefined);
    unregister();
    report.durationS = (Date.now() - t0) / 1000;
    console.log(`     (${report.durationS.toFixed(1)} s)`);
    reports.push(report);
  }
  return report;
}

/** Asserts a scenario report held, with its problems as the failure message. */
export function assertHeld(report: ScenarioReport): void {
  if (!report.ok) throw new Error(`${report.title}:\n  ${report.problems.join('\n  ')}`);
}

/** Polls `cond` every 20 ms until it holds or `ms` pass; returns whether it held. */
export async function waitUntil(cond: () => boolean | Promise<boolean>, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (await cond()) return true;
    await sleep(20);
  }
  return false;
}

interface WatchPoint {
  at: number;
  /** Operations open at that moment (-1 when Postgres could not say). */
  open: number;
  /** When every operation accepted before `at` was first seen terminal. */
  doneAt?: number;
  line?: number;
}

/**
 * Measures recovery by polling Postgres (every 250 ms): for each point in time, when every
 * operation accepted before it was terminal. Polled rather than read from completed_at, which is
 * now() of the worker's transaction, i.e. when it began, not when it committed.
 */
class RecoveryWatch {
  readonly points: WatchPoint[] = [];
  private timer?: NodeJS.Timeout;
  /** Polls asked for and not yet done; they run one after the other. */
  private pending = 0;
  private queued: Promise<void> = Promise.resolve();

  constructor(private readonly db: Knex) {}

  async add(): Promise<WatchPoint> {
    const point: WatchPoint = { at: Date.now(), open: -1 };
    this.points.push(point);
    point.open = await Promise.race([this.openBefore(point.at).catch(() => -1), sleep(1000).then(() => -1)]);
    return point;
  }

  private async openBefore(at: number): Promise<number> {
    const rows = await this.db('operations').whereNotIn('status', ['succeeded', 'failed']).andWhere('created_at', '<=', new Date(at)).count<{ count: string }[]>('* as count');
    return Number(rows[0]!.count);
  }

  start() {
    this.timer = setInterval(() => {
      if (!this.pending) void this.poll();
    }, 250);
  }

  stop() {
    clearInterval(this.timer);
  }

  /** Polls once, after the poll in progress if any: the last call sees the state at the time it was made. */
  poll(): Promise<void> {
    this.pending++;
    this.queued = this.queued.then(() => this.pollOnce()).finally(() => this.pending--);
    return this.queued;
  }

  private async pollOnce() {
    try {
      for (const p of this.points) {
        if (p.doneAt !== undefined) continue;
        const checkedAt = Date.now();
        if ((await this.openBefore(p.at)) === 0) p.doneAt = checkedAt;
      }
    } catch {
      /* Postgres may be down: poll again */
    }
  }
}

/** The harness's own connection: quiet, because Postgres going away is what several scenarios do on purpose. */
function harnessKnex(url: string): Knex {
  const quiet = () => undefined;
  return knexFactory({
    client: 'pg',
    connection: { connectionString: url, application_name: 'fault-harness' },
    pool: { min: 0, max: 6, afterCreate: (conn: { on(e: string, f: () => void): void }, done: (err: Error | null, conn: unknown) => void) => (conn.on('error', quiet), done(null, conn)) },
    acquireConnectionTimeout: 10_000,
    log: { warn: quiet, error: quiet, debug: quiet, deprecate: quiet },
  });
}
