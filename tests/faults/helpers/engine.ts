import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { freePort } from '../../../dev/stack.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const FAKETIME_LIBS = ['/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1', '/usr/lib/aarch64-linux-gnu/faketime/libfaketime.so.1', '/usr/lib/faketime/libfaketime.so.1'];

export type Role = 'api' | 'worker' | 'scheduler';

const ENTRY: Record<Role, { file: string; started: string }> = {
  api: { file: 'api/server.ts', started: 'web started' },
  worker: { file: 'workers/main.ts', started: 'worker started' },
  scheduler: { file: 'workers/scheduler.ts', started: 'scheduler started' },
};

export function faketimeLibrary(): string | undefined {
  return FAKETIME_LIBS.find((p) => existsSync(p));
}

/**
 * One engine process as the Procfile runs it (`node --import tsx <entry>`), with its logs kept in
 * memory (pino JSON lines): the last lines for a failure report, and counters read from them.
 */
export class EngineProcess {
  child?: ChildProcess;
  readonly tail: string[] = [];
  /** Operations the reconciler re-enqueued, summed from its log lines (worker processes only). */
  reenqueued = 0;
  jobErrors = 0;
  /** BullMQ "lock" complaints: a job this process held was taken over (stalled) while it still worked on it. */
  lockErrors = 0;
  readonly lockLines: string[] = [];
  exits: { code: number | null; signal: string | null }[] = [];
  private started?: Promise<void>;

  constructor(
    readonly name: string,
    readonly role: Role,
    private readonly env: Record<string, string>,
    /** A faketime offset such as '+2h' (libfaketime FAKETIME syntax). */
    public clockOffset?: string,
  ) {}

  get pid(): number | undefined {
    return this.child?.pid;
  }

  get alive(): boolean {
    return !!this.child && this.child.exitCode === null && this.child.signalCode === null;
  }

  /** Spawns it and resolves once it logged that it started (api: once /health answers). */
  start(extraEnv: Record<string, string> = {}): Promise<void> {
    const env: Record<string, string> = { ...(process.env as Record<string, string>), ...this.env, ...extraEnv };
    if (this.clockOffset) {
      const lib = faketimeLibrary();
      if (!lib) throw new Error('libfaketime not found: apt-get install -y faketime');
      Object.assign(env, { LD_PRELOAD: lib, FAKETIME: this.clockOffset, FAKETIME_DONT_FAKE_MONOTONIC: '1', FAKETIME_NO_CACHE: '1' });
    }
    const child = spawn(process.execPath, ['--import', 'tsx', ENTRY[this.role].file], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    let buffered = '';
    let signalStarted: () => void = () => undefined;
    const startedLine = new Promise<void>((resolve) => (signalStarted = resolve));
    const onLine = (line: string) => {
      if (!line) return;
      this.tail.push(line.length > 600 ? `${line.slice(0, 600)}…` : line);
      if (this.tail.length > 200) this.tail.shift();
      if (line.includes(ENTRY[this.role].started)) signalStarted();
      if (line.includes('reconciler re-enqueued')) {
        const n = /"reenqueued":(\d+)/.exec(line);
        if (n) this.reenqueued += Number(n[1]);
      }
      if (/missing lock|lock mismatch|lock.*not.*owned|could not renew lock/i.test(line)) {
        this.lockErrors++;
        if (this.lockLines.length < 5) this.lockLines.push(line.slice(0, 300));
      }
      if (line.includes('job attempt failed') || line.includes('operation failed after the last attempt')) this.jobErrors++;
    };
    const onData = (chunk: Buffer) => {
      buffered += chunk.toString();
      const lines = buffered.split('\n');
      buffered = lines.pop() ?? '';
      lines.forEach(onLine);
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    const exit = new Promise<never>((_, reject) =>
      child.once('exit', (code, signal) => {
        this.exits.push({ code, signal });
        reject(new Error(`${this.name} exited (${signal ?? code}) while starting:\n${this.tail.slice(-30).join('\n')}`));
      }),
    );
    exit.catch(() => undefined);
    const ready = this.role === 'api' ? this.waitHealthy() : startedLine;
    const timeout = new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`${this.name} did not start within 60 s:\n${this.tail.slice(-30).join('\n')}`)), 60_000).unref());
    this.started = Promise.race([ready, exit, timeout]);
    return this.started;
  }

  private async waitHealthy(): Promise<void> {
    const url = `http://127.0.0.1:${this.env.PORT}/health`;
    for (;;) {
      if (!this.alive) return new Promise(() => undefined); // the exit promise reports it
      try {
        if ((await fetch(url, { signal: AbortSignal.timeout(1000) })).ok) return;
      } catch {
        /* not up yet */
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  signal(sig: NodeJS.Signals): void {
    if (this.alive) this.child!.kill(sig);
  }

  /** kill -9: no cleanup, no graceful close; resolves once the OS reaped it. */
  async kill9(): Promise<void> {
    const child = this.child;
    if (!child || !this.alive) return;
    const gone = new Promise<void>((r) => child.once('exit', () => r()));
    child.kill('SIGKILL');
    await gone;
  }

  /** Resolves when the process exits by itself (a crash point), or rejects after `ms`. */
  async waitExit(ms: number): Promise<{ code: number | null; signal: string | null }> {
    const child = this.child;
    if (!child) throw new Error(`${this.name} was never started`);
    if (!this.alive) return this.exits[this.exits.length - 1]!;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${this.name} did not exit within ${ms} ms`)), ms);
      child.once('exit', (code, signal) => {
        clearTimeout(timer);
        resolve({ code, signal });
      });
    });
  }

  /** SIGTERM (graceful), then SIGKILL if it is still there after `graceMs`. */
  async stop(graceMs = 10_000): Promise<void> {
    const child = this.child;
    if (!child || !this.alive) return;
    const gone = new Promise<void>((r) => child.once('exit', () => r()));
    child.kill('SIGCONT');
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
    await gone;
    clearTimeout(timer);
  }
}

export interface EngineOptions {
  databaseUrl: string;
  redisUrl: string;
  queuePrefix: string;
  workers?: number;
  env?: Record<string, string>;
  clock?: Partial<Record<Role, string>>;
}

/** api + worker(s) + scheduler as separate OS processes against one Postgres and one Redis. */
export class Engine {
  readonly api: EngineProcess;
  readonly workers: EngineProcess[] = [];
  readonly scheduler: EngineProcess;
  readonly retired: EngineProcess[] = [];
  private generation = 0;

  private constructor(
    readonly port: number,
    private readonly env: Record<string, string>,
    /** Clock offsets for processes started from now on (faketime syntax). */
    readonly clock: Partial<Record<Role, string>>,
    workers: number,
  ) {
    this.api = new EngineProcess('api', 'api', { ...env, LOG_LEVEL: 'warn' }, clock.api);
    for (let i = 0; i < workers; i++) this.workers.push(this.newWorker());
    this.scheduler = new EngineProcess('scheduler', 'scheduler', env, clock.scheduler);
  }

  static async start(o: EngineOptions): Promise<Engine> {
    const port = await freePort();
    const env: Record<string, string> = {
      // Production settings but for webhooks: the scenarios' receivers listen on loopback, which production refuses.
      NODE_ENV: 'test',
      WEBHOOK_ALLOW_INSECURE: 'true',
      DATABASE_URL: o.databaseUrl,
      REDIS_URL: o.redisUrl,
      PORT: String(port),
      QUEUE_PREFIX: o.queuePrefix,
      // info for workers and the scheduler: their "started" and reconciler lines are counted; the api logs every request at info, so it runs at warn.
      LOG_LEVEL: 'info',
      RECONCILE_AFTER_S: '3',
      RECONCILE_CRON: '*/2 * * * * *',
      RELAY_CRON: '* * * * * *',
      JOB_LOCK_MS: '5000',
      STALLED_INTERVAL_MS: '2000',
      WEBHOOK_BACKOFF_BASE_MS: '200',
      WEBHOOK_BACKOFF_CAP_MS: '3000',
      WEBHOOK_TIMEOUT_MS: '2000',
      ENCRYPTION_KEY: 'a1'.repeat(32),
      DB_POOL_MAX: '10',
      WORKER_METRICS_PORT: '0',
      RATE_LIMIT_PER_KEY_PER_MIN: '1000000',
      RATE_LIMIT_PER_IP_PER_MIN: '1000000',
      RATE_LIMIT_PAYMENT_PER_KEY_PER_MIN: '1000000',
      RATE_LIMIT_QR_ISSUE_PER_CARD_PER_MIN: '1000000',
      ...o.env,
    };
    const engine = new Engine(port, env, o.clock ?? {}, o.workers ?? 1);
    await Promise.all([engine.api.start(), ...engine.workers.map((w) => w.start()), engine.scheduler.start()]);
    return engine;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  private newWorker(): EngineProcess {
    return new EngineProcess(`worker-${++this.generation}`, 'worker', this.env, this.clock.worker);
  }

  /**
   * Replaces a worker with a fresh process, optionally with extra env. A live one is killed -9,
   * or stopped with SIGTERM when `graceful`.
   */
  async replaceWorker(old: EngineProcess, extraEnv: Record<string, string> = {}, graceful = false): Promise<EngineProcess> {
    const i = this.workers.indexOf(old);
    if (i < 0) throw new Error(`${old.name} is not a current worker`);
    if (old.alive) await (graceful ? old.stop() : old.kill9());
    this.retired.push(old);
    const fresh = this.newWorker();
    this.workers[i] = fresh;
    await fresh.start(extraEnv);
    return fresh;
  }

  /** Starts the api again after it died (same port, so clients keep their address), with the current `clock.api`. */
  async restartApi(): Promise<void> {
    if (this.api.alive) await this.api.kill9();
    this.api.clockOffset = this.clock.api;
    await this.api.start();
  }

  /** Starts the scheduler again after it died. */
  async restartScheduler(): Promise<void> {
    if (this.scheduler.alive) await this.scheduler.kill9();
    this.scheduler.clockOffset = this.clock.scheduler;
    await this.scheduler.start();
  }

  all(): EngineProcess[] {
    return [this.api, ...this.workers, this.scheduler, ...this.retired];
  }

  reenqueued(): number {
    return this.all().reduce((n, p) => n + p.reenqueued, 0);
  }

  async stop(): Promise<void> {
    await Promise.all([this.api, ...this.workers, this.scheduler].map((p) => p.stop()));
  }

  /** Synchronous last resort (process exit). */
  killAll(): void {
    for (const p of this.all()) p.signal('SIGKILL');
  }
}

/** Local TCP ports of a process's sockets (from /proc), to tell its Postgres sessions apart. */
export function localPortsOf(pid: number): Set<number> {
  const inodes = new Set<string>();
  try {
    for (const fd of readdirSync(`/proc/${pid}/fd`)) {
      try {
        const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
        if (m) inodes.add(m[1]!);
      } catch {
        /* closed meanwhile */
      }
    }
  } catch {
    return new Set();
  }
  const ports = new Set<number>();
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text = '';
    try {
      text = readFileSync(table, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const cols = line.trim().split(/\s+/);
      if (cols.length > 9 && inodes.has(cols[9]!)) ports.add(parseInt(cols[1]!.split(':')[1]!, 16));
    }
  }
  return ports;
}
