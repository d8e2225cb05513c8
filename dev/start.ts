import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadConfig, loadConfigOrExit, type Config } from '../config/env.js';
import { redisConfigured } from '../config/redis.js';
import { createKnex, migrateLatest } from '../db/knex.js';
import type { DemoData } from '../db/seeds/demo.js';
import type { ReadyMessage } from '../app/entry.js';
import { MissingRedisError, freePort, startLocalStack, type LocalStack } from './stack.js';
import { demoInstructions, stackBanner, type EngineProcessInfo } from './instructions.js';
import { DATA_DIR, STACK_FILE, type RunningStack } from './stack-file.js';

const DEMO_FILE = join(DATA_DIR, 'demo.json');
/** Longer than an entry point's own 30 s shutdown limit: a child past it is killed. */
const CHILD_STOP_TIMEOUT_MS = 35_000;

// The Procfile's entry points, run from source through tsx's loader (one process each, no tsx CLI
// in between), or the compiled ones when this file runs from dist/.
const FROM_SOURCE = import.meta.url.endsWith('.ts');
const entry = (path: string) => fileURLToPath(new URL(`../${path}${FROM_SOURCE ? '.ts' : '.js'}`, import.meta.url));
const NODE_ARGS = FROM_SOURCE ? ['--import', import.meta.resolve('tsx')] : [];

interface Child {
  name: string;
  child: ChildProcess;
  opsUrl?: string;
  ready: Promise<void>;
  /** How it ended: `exit code 0`, `signal SIGKILL`, … */
  exited: Promise<string>;
  done(): boolean;
}

/**
 * `npm start`: the whole system from one command, on as many cores as there are. This process
 * runs (without DATABASE_URL / REDIS_URL, or REDIS_CLUSTER_NODES) its own Postgres and Redis with
 * data in ./.data, applies the migrations and seeds the demo data; the engine runs in child
 * processes as the Procfile runs it: one web (api/server.ts), WORKER_PROCESSES workers
 * (workers/main.ts, with the probes) and one scheduler (workers/scheduler.ts). Only the embedded
 * stack gets demo data and the developer defaults (127.0.0.1, insecure webhooks). One Ctrl-C (or
 * SIGTERM to this process) stops the children, then the stack; a child that exits on its own
 * stops everything with exit code 1 (a crash is shown, not hidden behind a restart).
 */
async function main() {
  const started = Date.now();
  const config: Config = loadConfigOrExit();
  const children: Child[] = [];
  let stack: LocalStack | undefined;
  let preparing: Promise<unknown> = Promise.resolve();
  let stopping: Promise<void> | undefined;

  const stop = (code: number, why?: string): Promise<void> =>
    (stopping ??= (async () => {
      if (why) console.error(`\n${why}`);
      console.log('\nStopping …');
      // A step still under way (the stack starting, migrations, the demo seed) ends first: the
      // embedded servers must not outlive us, nor stop under a client.
      await preparing.catch(() => undefined);
      const running = children.filter((c) => !c.done());
      for (const c of running) c.child.kill('SIGTERM');
      const killer = setTimeout(() => {
        for (const c of running) if (!c.done()) c.child.kill('SIGKILL');
      }, CHILD_STOP_TIMEOUT_MS);
      const ends = await Promise.all(running.map((c) => c.exited));
      clearTimeout(killer);
      for (const [i, end] of ends.entries()) if (end !== 'exit code 0') console.error(`while stopping: ${running[i]!.name} ended with ${end}`);
      await stack?.stop().catch((err: unknown) => console.error('while stopping:', (err as Error).message));
      if (stack) rmSync(STACK_FILE, { force: true });
      console.log('Stopped.');
      process.exit(code);
    })());
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(signal, () => void stop(0));

  const hasRedis = redisConfigured(config);
  // What the children get on top of this environment: exactly what the in-process start used to set.
  const env: Record<string, string> = {};
  const onEnd = (c: Child, end: string) => {
    if (!stopping) void stop(1, `MPS ${c.name} (pid ${c.child.pid}) ended unexpectedly with ${end}; stopping everything.`);
  };
  const prepare = async (): Promise<{ childConfig: Config; demo?: DemoData } | undefined> => {
    if (!config.DATABASE_URL || !hasRedis) {
      mkdirSync(DATA_DIR, { recursive: true });
      console.log('Starting embedded PostgreSQL and redis-server (data in ./.data) …');
      stack = await startLocalStack(DATA_DIR, { persistent: true });
      env.DATABASE_URL = config.DATABASE_URL ?? stack.databaseUrl;
      if (!hasRedis) env.REDIS_URL = stack.redisUrl;
      env.ENCRYPTION_KEY = config.ENCRYPTION_KEY ?? localEncryptionKey();
      if (!process.env.HOST) env.HOST = '127.0.0.1';
      // The demo's webhook receiver runs on this machine; production keeps the default (false).
      if (!process.env.WEBHOOK_ALLOW_INSECURE) env.WEBHOOK_ALLOW_INSECURE = String(config.NODE_ENV !== 'production');
    }
    if (stopping) return undefined;
    const migrator = createKnex(env.DATABASE_URL ?? config.DATABASE_URL!, 1, () => undefined);
    const applied = await migrateLatest(migrator).finally(() => migrator.destroy());
    if (applied.length) console.log(`Applied ${applied.length} migrations.`);

    // Ports are chosen here, so that the banner can say where each process listens.
    const host = env.HOST ?? config.HOST;
    if (!config.PORT) env.PORT = String(await freePort());
    // /metrics ports as set (0: none), else free ones: the defaults 9464/9465 are what every other
    // worker and scheduler on the machine takes (another npm start, the tests), and a child binds
    // its port seconds after this choice.
    const opsPort = async (setting: 'WORKER_METRICS_PORT' | 'SCHEDULER_METRICS_PORT', first: boolean) => {
      if (!process.env[setting]) return freePort();
      return config[setting] === 0 ? 0 : first ? config[setting] : freePort();
    };
    const workerPorts: number[] = [];
    for (let i = 0; i < config.WORKER_PROCESSES; i++) workerPorts.push(await opsPort('WORKER_METRICS_PORT', i === 0));
    const schedulerPort = await opsPort('SCHEDULER_METRICS_PORT', true);
    if (stopping) return undefined;
    const childConfig = loadConfig({ ...process.env, ...env });
    const spawnOne = (name: string, file: string, own: Record<string, string>, metricsPort = 0) =>
      children.push(spawnChild(name, entry(file), { ...process.env, ...env, ...own }, metricsPort ? `http://${shownHost(host)}:${metricsPort}` : undefined, onEnd));
    spawnOne('web', 'api/server', {});
    workerPorts.forEach((p, i) => spawnOne(workerPorts.length > 1 ? `worker-${i + 1}` : 'worker', 'workers/main', { WORKER_METRICS_PORT: String(p) }, p));
    spawnOne('scheduler', 'workers/scheduler', { SCHEDULER_METRICS_PORT: String(schedulerPort) }, schedulerPort);

    // The demo is made here while the children boot: rows only, nothing they wait for.
    if (!stack || config.NODE_ENV === 'production') return { childConfig };
    const demo = existsSync(DEMO_FILE) ? (JSON.parse(readFileSync(DEMO_FILE, 'utf8')) as DemoData) : await createDemo(childConfig);
    return { childConfig, demo };
  };
  const prepared = prepare();
  preparing = prepared;
  let ready: Awaited<typeof prepared>;
  try {
    ready = await prepared;
  } catch (err) {
    if (stopping) return;
    if (!stack && !children.length) throw err;
    console.error('MPS failed to start:', err);
    return void stop(1);
  }
  if (!ready || stopping) return;
  await Promise.all(children.map((c) => c.ready));
  if (stopping) return;

  const { childConfig, demo } = ready;
  const url = `http://${shownHost(childConfig.HOST)}:${childConfig.PORT}`;
  const processes: EngineProcessInfo[] = children.map((c) => ({ name: c.name, pid: c.child.pid!, opsUrl: c.opsUrl }));
  if (stack) writeStackFile({ pid: process.pid, apiUrl: url, databaseUrl: childConfig.DATABASE_URL!, redisUrl: childConfig.REDIS_URL, processes: processes.map(({ name, pid }) => ({ name, pid })) });
  if (demo) console.log(demoInstructions(url, demo));
  console.log(stackBanner(url, childConfig, stack !== undefined, processes));
  const workers = children.length - 2;
  console.log(
    `MPS is up in ${((Date.now() - started) / 1000).toFixed(1)} s: api ${url}, ${workers} worker process${workers > 1 ? 'es' : ''} on ${childConfig.CARD_PARTITIONS} partitions, scheduler; each its own process. Ctrl-C stops.`,
  );
}

/**
 * One engine process with an IPC channel (it says when it is up, and stops by itself when this
 * process is gone). Its own process group: Ctrl-C reaches this process only, which stops the
 * children itself, once each and before the stack; their output goes straight to the terminal.
 */
function spawnChild(name: string, file: string, env: NodeJS.ProcessEnv, opsUrl: string | undefined, onEnd: (c: Child, end: string) => void): Child {
  const child = spawn(process.execPath, [...NODE_ARGS, file], { env, stdio: ['ignore', 'inherit', 'inherit', 'ipc'], detached: true });
  let done = false;
  const exited = new Promise<string>((resolve) => {
    const end = (what: string) => {
      if (done) return;
      done = true;
      resolve(what);
    };
    child.once('exit', (code, signal) => end(signal ? `signal ${signal}` : `exit code ${code}`));
    child.once('error', (err) => end(`error ${err.message}`));
  });
  const ready = new Promise<void>((resolve) => {
    child.on('message', (m: Partial<ReadyMessage> | null) => {
      if (m?.mps === 'ready') resolve();
    });
  });
  const c: Child = { name, child, opsUrl, ready, exited, done: () => done };
  void exited.then((end) => onEnd(c, end));
  return c;
}

const shownHost = (host: string) => (host === '0.0.0.0' || host === '::' ? 'localhost' : host.includes(':') ? `[${host}]` : host);

/** The demo tenant, made once; its keys are kept in ./.data (git-ignored) to be shown again. */
async function createDemo(config: Config): Promise<DemoData> {
  // Loaded only for the first start: the seed drives a real recharge through the job layer.
  const [{ createDeps, closeDeps }, { seedDemo }, { createLogger }] = await Promise.all([import('../app/deps.js'), import('../db/seeds/demo.js'), import('../config/logger.js')]);
  const deps = await createDeps({ ...config, DB_POOL_MAX: 2 }, { logger: createLogger(config.LOG_LEVEL).child({ process: 'npm start' }) });
  try {
    const demo = await seedDemo(deps);
    writeFileSync(DEMO_FILE, JSON.stringify(demo, null, 2), { mode: 0o600 });
    return demo;
  } finally {
    await closeDeps(deps);
  }
}

/** Where the running embedded stack listens, for `npm run cli` (its ports change at every start). */
function writeStackFile(running: RunningStack): void {
  writeFileSync(STACK_FILE, JSON.stringify(running, null, 2), { mode: 0o600 });
}

/** The embedded default's ENCRYPTION_KEY: made once and kept beside the data it protects. */
function localEncryptionKey(): string {
  const file = join(DATA_DIR, 'encryption.key');
  if (!existsSync(file)) writeFileSync(file, randomBytes(32).toString('hex'), { mode: 0o600 });
  chmodSync(file, 0o600);
  return readFileSync(file, 'utf8').trim();
}

main().catch((err: unknown) => {
  if (err instanceof MissingRedisError) console.error(err.message);
  else console.error('MPS failed to start:', err);
  process.exit(1);
});
