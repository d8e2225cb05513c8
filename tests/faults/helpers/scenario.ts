import type { Knex } from 'knex';
import { preload, type Preload } from '../../../bench/preload.js';
import { createKnex } from '../../../db/knex.js';
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
  /** Adds a line to the scenario's timeline ("+4.1 s redis SIGKILL"). */
  note(message: string): void;
  /**
   * A timeline line for a moment of harm (a kill, a flush, a cut): the report adds how many
   * operations were open at that moment and how long until every operation accepted before it
   * was terminal.
   */
  harm(message: string): void;
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
export const allReports = () => reports;

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
  const db = createKnex(pg.url(database), 6, () => undefined);
  const timeline: string[] = [];
  const problems: string[] = [];
  let engine: Engine | undefined;
  let proxies: { pg: FaultProxy; redis: FaultProxy } | undefined;
  let loadStart = Date.now();
  const elapsedS = () => (Date.now() - loadStart) / 1000;
  const note = (message: string) => timeline.push(`+${elapsedS().toFixed(1)} s ${message}`);
  // Engine, servers and this process share the machine's clock (faketime only shifts engine processes), so Postgres times compare with Date.now().
  const harms: { line: number; at: Date }[] = [];
  const harm = (message: string) => {
    note(message);
    harms.push({ line: timeline.length - 1, at: new Date() });
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
    const clients = new PosClients({ url: () => running.url, attemptTimeoutMs: spec.attemptTimeoutMs ?? 5000, giveUpMs: 90_000, waitS: spec.waitS ?? 3 });
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
    await sleep(spec.warmupMs ?? 4000);

    const faultStartDb = new Date();
    const faultStart = Date.now();
    note(`fault begins (${await ctx.openOperations()} operations open)`);
    await spec.fault(ctx);
    const faultEnd = Date.now();
    note('fault over');
    const faultEndDb = new Date();
    await sleep(spec.afterMs ?? 8000);
    note(`load stopping (${load.pending} requests in flight)`);
    await load.stop();
    note('load stopped');

    const acceptedIds = [...clients.accepted.keys()];
    const drain = await waitAllTerminal(db, acceptedIds, TERMINAL_BOUND_MS);
    note(`all operations terminal: ${drain.open === 0 ? 'yes' : `NO, ${drain.open} open`} (${(drain.ms / 1000).toFixed(1)} s after the load stopped)`);
    const invariants = await checkInvariants(db, clients);
    report.invariants = invariants;

    // Recovery: the last operation accepted before the fault ended reached its terminal state this long after the fault ended.
    const { rows: rec } = await db.raw<{ rows: { recover_s: number | null; open_at_fault: string; redriven: string; finished_after_fault: string }[] }>(
      `SELECT extract(epoch FROM max(completed_at) FILTER (WHERE created_at <= :end) - :end)::float AS recover_s,
              count(*) FILTER (WHERE created_at <= :start AND (completed_at IS NULL OR completed_at > :start)) AS open_at_fault,
              count(*) FILTER (WHERE attempts > 1) AS redriven,
              count(*) FILTER (WHERE created_at <= :end AND completed_at > :end) AS finished_after_fault
         FROM operations WHERE id NOT LIKE 'op\\_bench-%'`,
      { start: faultStartDb, end: faultEndDb },
    );
    const r = rec[0]!;
    const harmRecoveries: number[] = [];
    for (const h of harms) {
      const { rows } = await db.raw<{ rows: { open: string; done_s: number | null }[] }>(
        `SELECT count(*) FILTER (WHERE completed_at IS NULL OR completed_at > :t) AS open,
                extract(epoch FROM max(completed_at) - :t)::float AS done_s
           FROM operations WHERE created_at <= :t AND id NOT LIKE 'op\\_bench-%'`,
        { t: h.at },
      );
      const doneS = Math.max(0, rows[0]!.done_s ?? 0);
      harmRecoveries.push(doneS);
      timeline[h.line] += ` [${rows[0]!.open} operations open; every operation accepted before it terminal ${doneS.toFixed(1)} s later]`;
    }
    const recoverS = Math.max(0, r.recover_s ?? 0);
    const { rows: outcomes } = await db.raw<{ rows: { type: string; status: string; code: string | null; n: string }[] }>(
      `SELECT type, status, error_code AS code, count(*) AS n FROM operations WHERE id NOT LIKE 'op\\_bench-%' GROUP BY 1, 2, 3 ORDER BY 1, 2, 3`,
    );
    const succeeded = outcomes.filter((o) => o.status === 'succeeded').reduce((s, o) => s + Number(o.n), 0);
    const failedByCode: Record<string, number> = {};
    for (const o of outcomes) if (o.status === 'failed') failedByCode[`${o.type}:${o.code}`] = (failedByCode[`${o.type}:${o.code}`] ?? 0) + Number(o.n);
    const total = outcomes.reduce((s, o) => s + Number(o.n), 0);
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
      open_at_fault: Number(r.open_at_fault),
      finished_after_fault: Number(r.finished_after_fault),
      redriven_attempts_gt_1: Number(r.redriven),
      reconciler_reenqueued: running.reenqueued(),
      fault_s: (faultEnd - faultStart) / 1000,
      recover_s: recoverS,
      harm_recover_s: harmRecoveries,
      drain_after_load_s: drain.ms / 1000,
      boot_s: bootS,
    };

    if (drain.open !== 0) problems.push(`${drain.open} operations were still open ${TERMINAL_BOUND_MS / 1000} s after the load stopped`);
    for (const sec of [recoverS, ...harmRecoveries]) if (sec > TERMINAL_BOUND_MS / 1000) problems.push(`recovery took ${sec.toFixed(1)} s (bound ${TERMINAL_BOUND_MS / 1000} s)`);
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
      `     recovery: ${r.open_at_fault} open at fault start, ${r.finished_after_fault} accepted before the fault ended finished after it, ${r.redriven} ran more than once (attempts > 1), reconciler re-enqueued ${running.reenqueued()}; fault lasted ${((faultEnd - faultStart) / 1000).toFixed(1)} s; time to recover ${recoverS.toFixed(1)} s; drain after load ${(drain.ms / 1000).toFixed(1)} s`,
      `     invariants: ${Object.keys(invariants.checks).length} checks ${invariants.ok ? 'hold' : 'BROKEN'}; audit chain ${invariants.audit.ok ? 'verifies' : `BROKEN at ${invariants.audit.first_broken_id}`} (${invariants.audit.checked} events)`,
      ...problems.map((p) => `     PROBLEM: ${p}`),
    ];
    console.log(lines.join('\n'));
  } catch (err) {
    problems.push(`scenario error: ${(err as Error).stack ?? err}`);
  } finally {
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
