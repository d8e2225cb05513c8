import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
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
  child: ChildProcess;
}

export interface EngineShape {
  /** Web processes, each on its own port; the load generator spreads its requests over them. */
  webs: number;
  /** Worker processes; every one serves every partition (global concurrency 1 keeps each card serial). */
  workers: number;
}

/** Starts `web` and `worker` processes as the Procfile runs them, each its own OS process. */
export async function startEngine(env: Record<string, string>, shape: EngineShape = { webs: 1, workers: 1 }): Promise<{ url: string; urls: string[]; processes: EngineProcess[]; stop(): Promise<void> }> {
  // Production mode, which wants a METRICS_TOKEN: the bench reads no metrics, so a throwaway one.
  const common = { ...process.env, METRICS_TOKEN: randomBytes(24).toString('hex'), ...env, LOG_LEVEL: env.LOG_LEVEL ?? 'warn', NODE_ENV: 'production' };
  const start = (name: string, file: string, own: Record<string, string>) => {
    // BENCH_CPU_PROF=<dir> writes a V8 CPU profile of each engine process there when it exits.
    const profile = process.env.BENCH_CPU_PROF ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_CPU_PROF}/${name}`] : [];
    const child = spawn(process.execPath, [...profile, '--import', 'tsx', file], { env: { ...common, ...own }, stdio: ['ignore', 'inherit', 'inherit'] });
    return { name, child };
  };
  const processes: EngineProcess[] = [];
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
  return {
    url: urls[0]!,
    urls,
    processes,
    stop: async () => {
      await Promise.all(
        processes.map(
          (p) =>
            new Promise<void>((resolve) => {
              if (p.child.exitCode !== null) return resolve();
              p.child.once('exit', () => resolve());
              p.child.kill('SIGTERM');
            }),
        ),
      );
    },
  };
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
