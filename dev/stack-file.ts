import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

export const DATA_DIR = resolve('.data');
export const STACK_FILE = join(DATA_DIR, 'stack.json');

/** What `npm start` writes while its embedded stack runs, and `npm run cli` reads to find it; `pid` is its parent process. */
export interface RunningStack {
  pid: number;
  apiUrl: string;
  databaseUrl: string;
  /** Unset when Redis is not the embedded one (REDIS_CLUSTER_NODES, or a given REDIS_URL). */
  redisUrl?: string;
  /** The engine's processes `npm start` runs (web, worker(s), scheduler), each its own OS process. */
  processes?: { name: string; pid: number }[];
}

/** The embedded stack of a running `npm start` in this folder, if there is one (its process is alive). */
export function runningStack(file = STACK_FILE): RunningStack | undefined {
  if (!existsSync(file)) return undefined;
  try {
    const stack = JSON.parse(readFileSync(file, 'utf8')) as RunningStack;
    process.kill(stack.pid, 0);
    return stack;
  } catch {
    return undefined;
  }
}
