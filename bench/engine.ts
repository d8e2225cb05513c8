import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, startLocalStack } from '../dev/stack.js';

export interface BenchStores {
  databaseUrl: string;
  redisUrl: string;
  /** True when the bench started its own Postgres and Redis (a throwaway temp folder). */
  embedded: boolean;
  stop(): Promise<void>;
}

/**
 * DATABASE_URL / REDIS_URL when given (REDIS_URL only if `needsRedis`; REDIS_CLUSTER_NODES reaches
 * the engine through its environment), else an embedded Postgres and redis-server in a temp folder
 * that stop() removes.
 */
export async function benchStores(name: string, needsRedis = true): Promise<BenchStores> {
  const { DATABASE_URL, REDIS_URL, REDIS_CLUSTER_NODES } = process.env;
  if (DATABASE_URL && (REDIS_URL || REDIS_CLUSTER_NODES || !needsRedis)) {
    return { databaseUrl: DATABASE_URL, redisUrl: REDIS_URL ?? '', embedded: false, stop: async () => undefined };
  }
  const dataDir = mkdtempSync(join(tmpdir(), `mps-${name}-`));
  const stack = await startLocalStack(dataDir, { persistent: false, database: 'mps_bench' });
  return {
    databaseUrl: stack.databaseUrl,
    redisUrl: stack.redisUrl,
    embedded: true,
    stop: async () => {
      await stack.stop();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

export interface EngineProcess {
  name: string;
  pid: number;
}

export interface RunningEngine {
  url: string;
  /** The web processes' URLs. */
  urls: string[];
  processes: EngineProcess[];
  stop(): Promise<void>;
}

export interface EngineShape {
  /** Web processes, each on its own port; the load generator spreads its requests over them. */
  webs: number;
  /** Worker processes; every one serves every partition (global concurrency 1 keeps each card serial). */
  workers: number;
}

export interface EngineOutput {
  /** Where the engine's stdout (its pino lines) goes: a file, or this terminal when unset. */
  logFile?: string;
}

// Production mode, which wants a METRICS_TOKEN: the bench reads no metrics, so a throwaway one.
const engineEnv = (env: Record<string, string>) => ({ ...process.env, METRICS_TOKEN: randomBytes(24).toString('hex'), ...env, LOG_LEVEL: env.LOG_LEVEL ?? 'warn', NODE_ENV: 'production' });

const running = new Set<ChildProcess>();
let cleanupInstalled = false;

/**
 * An engine process in a session of its own, as npm start runs its children (and a process
 * manager each Procfile process): with the kernel's autogroup scheduling, the machine's other
 * sessions then take the same share of CPU from either engine. Since Ctrl-C no longer reaches
 * it, the bench stops what it started when it is interrupted or exits.
 */
function spawnEngineProcess(args: string[], env: NodeJS.ProcessEnv, stdout: 'inherit' | number): ChildProcess {
  const child = spawn(process.execPath, args, { env, stdio: ['ignore', stdout, 'inherit'], detached: true });
  running.add(child);
  child.once('exit', () => running.delete(child));
  if (!cleanupInstalled) {
    cleanupInstalled = true;
    process.once('exit', () => {
      for (const c of running) c.kill('SIGKILL');
    });
    for (const signal of ['SIGINT', 'SIGTERM'] as const) {
      process.once(signal, () => {
        for (const c of running) c.kill('SIGTERM');
        setTimeout(() => process.exit(130), 5000).unref();
        const left = [...running].map((c) => new Promise((resolve) => c.once('exit', resolve)));
        void Promise.all(left).then(() => process.exit(130));
      });
    }
  }
  return child;
}

function stdoutTo(output: EngineOutput): 'inherit' | number {
  return output.logFile ? openSync(output.logFile, 'a') : 'inherit';
}

/** Starts `web` and `worker` processes as the Procfile runs them, each its own OS process. */
export async function startEngine(env: Record<string, string>, shape: EngineShape = { webs: 1, workers: 1 }, output: EngineOutput = {}): Promise<RunningEngine> {
  const common = engineEnv(env);
  const stdout = stdoutTo(output);
  const children: ChildProcess[] = [];
  const processes: EngineProcess[] = [];
  const start = (name: string, file: string, own: Record<string, string>) => {
    // BENCH_CPU_PROF=<dir> writes a V8 CPU profile of each engine process there when it exits.
    const profile = process.env.BENCH_CPU_PROF ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_CPU_PROF}/${name}`] : [];
    const child = spawnEngineProcess([...profile, '--import', 'tsx', file], { ...common, ...own }, stdout);
    children.push(child);
    return { name, pid: child.pid! };
  };
  const urls: string[] = [];
  for (let i = 1; i <= shape.webs; i++) {
    const port = await freePort();
    processes.push(start(shape.webs > 1 ? `web-${i}` : 'web', 'api/server.ts', { PORT: String(port) }));
    urls.push(`http://127.0.0.1:${port}`);
  }
  for (let i = 1; i <= shape.workers; i++) {
    // Each worker its own /metrics port, as README asks of workers sharing a host.
    const metricsPort = env.WORKER_METRICS_PORT === '0' ? '0' : String(await freePort());
    processes.push(start(shape.workers > 1 ? `worker-${i}` : 'worker', 'workers/main.ts', { WORKER_METRICS_PORT: metricsPort }));
  }
  await untilReady(urls);
  return { url: urls[0]!, urls, processes, stop: () => Promise.all(children.map(stopChild)).then(() => undefined) };
}

/**
 * Starts the engine the way `npm start` runs it (dev/start.ts: one parent process, and web,
 * `workers` worker and scheduler child processes), against the bench's Postgres and Redis; stop()
 * sends SIGTERM to the parent alone, which stops its children.
 */
export async function startNpmStart(env: Record<string, string>, workers: number, output: EngineOutput = {}): Promise<RunningEngine> {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const profile = process.env.BENCH_CPU_PROF ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_CPU_PROF}/npm-start`] : [];
  const parent = spawnEngineProcess([...profile, '--import', 'tsx', 'dev/start.ts'], { ...engineEnv(env), PORT: String(port), WORKER_PROCESSES: String(workers) }, stdoutTo(output));
  const exited = new Promise<void>((resolve) => parent.once('exit', () => resolve()));
  await Promise.race([untilReady([url]), exited.then(() => Promise.reject(new Error(`npm start exited with ${parent.exitCode}`)))]);
  // The engine is up once the parent has its web, its workers and its scheduler (an npm start
  // that runs them in its own process, as before 2026-12, has none: it is measured alone).
  const expected = workers + 2;
  let processes: EngineProcess[] = [];
  for (const deadline = Date.now() + 20_000; processes.length < expected; await new Promise((r) => setTimeout(r, 100))) {
    if (Date.now() > deadline) {
      console.warn(`npm start has ${processes.length} of ${expected} engine processes after 20 s; measuring what there is`);
      break;
    }
    processes = childProcesses(parent.pid!);
  }
  return { url, urls: [url], processes: [{ name: 'npm-start', pid: parent.pid! }, ...processes], stop: () => stopChild(parent) };
}

/** The engine processes among a process's children, named by their entry point (web, worker-N, scheduler). */
function childProcesses(pid: number): EngineProcess[] {
  const pids = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  const named = pids.flatMap((child) => {
    const cmdline = readFileSync(`/proc/${child}/cmdline`, 'utf8');
    const name = /api\/server\.[jt]s/.test(cmdline) ? 'web' : /workers\/main\.[jt]s/.test(cmdline) ? 'worker' : /workers\/scheduler\.[jt]s/.test(cmdline) ? 'scheduler' : undefined;
    return name ? [{ name, pid: child }] : [];
  });
  const workers = named.filter((p) => p.name === 'worker');
  if (workers.length > 1) workers.forEach((p, i) => (p.name = `worker-${i + 1}`));
  return named;
}

async function untilReady(urls: string[]): Promise<void> {
  const deadline = Date.now() + 60_000;
  for (const url of urls) {
    for (;;) {
      try {
        if ((await fetch(`${url}/ready`)).ok) break;
      } catch {
        /* not up yet */
      }
      if (Date.now() > deadline) throw new Error('engine did not become ready within 60 s');
      await new Promise((r) => setTimeout(r, 200));
    }
  }
}

function stopChild(child: ChildProcess): Promise<void> {
  return new Promise<void>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    child.once('exit', () => resolve());
    child.kill('SIGTERM');
  });
}

const TICKS_PER_S = 100;

/** CPU seconds used so far and resident memory of a process, from /proc. */
export function sampleProcess(pid: number): { cpuS: number; rssMb: number } {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const cpuS = (Number(fields[11]) + Number(fields[12])) / TICKS_PER_S;
  const rssKb = Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0);
  return { cpuS, rssMb: rssKb / 1024 };
}
