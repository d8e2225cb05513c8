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

/** Starts `web` and `worker` as separate OS processes, as the Procfile runs them. */
export async function startEngine(env: Record<string, string>): Promise<{ url: string; processes: EngineProcess[]; stop(): Promise<void> }> {
  const port = await freePort();
  // Production mode, which wants a METRICS_TOKEN: the bench reads no metrics, so a throwaway one.
  const common = { ...process.env, METRICS_TOKEN: randomBytes(24).toString('hex'), ...env, PORT: String(port), LOG_LEVEL: env.LOG_LEVEL ?? 'warn', NODE_ENV: 'production' };
  const start = (name: string, file: string) => {
    // BENCH_CPU_PROF=<dir> writes a V8 CPU profile of each engine process there when it exits.
    const profile = process.env.BENCH_CPU_PROF ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_CPU_PROF}/${name}`] : [];
    const child = spawn(process.execPath, [...profile, '--import', 'tsx', file], { env: common, stdio: ['ignore', 'inherit', 'inherit'] });
    return { name, child };
  };
  const processes = [start('web', 'api/server.ts'), start('worker', 'workers/main.ts')];
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 60_000;
  for (;;) {
    try {
      if ((await fetch(`${url}/ready`)).ok) break;
    } catch {
      /* not up yet */
    }
    if (Date.now() > deadline) throw new Error('engine did not become ready within 60 s');
    await new Promise((r) => setTimeout(r, 200));
  }
  return {
    url,
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
