import { execFile, execFileSync } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { findPgTool } from '../../cli/pg-tools.js';
import { freePort } from '../../dev/stack.js';
import { testEnv } from './env.js';

const run = promisify(execFile);

/** A Postgres server whose databases the installed pg_dump can dump. */
export interface DumpablePostgres {
  /** Where backup and restore should look for pg_dump and pg_restore (PG_BIN_DIR). */
  binDir?: string;
  /** Creates an empty database (CREATE DATABASE) and gives its URL. */
  createDatabase(name: string): Promise<string>;
  stop(): Promise<void>;
}

const withDatabase = (url: string, database: string) => Object.assign(new URL(url), { pathname: `/${database}` }).toString();

async function createDatabaseOn(url: string, name: string): Promise<string> {
  const client = new pg.Client({ connectionString: withDatabase(url, 'postgres') });
  await client.connect();
  try {
    await client.query(`CREATE DATABASE "${name}"`);
  } finally {
    await client.end();
  }
  return withDatabase(url, name);
}

async function serverMajor(url: string): Promise<number> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const { rows } = await client.query<{ num: string }>(`SELECT current_setting('server_version_num') AS num`);
    return Math.floor(Number(rows[0]!.num) / 10_000);
  } finally {
    await client.end();
  }
}

/** Local server binaries that come with a pg_dump of their own major (Debian's postgresql-NN), newest first. */
function localServerBinDirs(): string[] {
  const root = '/usr/lib/postgresql';
  if (!existsSync(root)) return [];
  return readdirSync(root)
    .sort((a, b) => Number(b) - Number(a))
    .map((major) => join(root, major, 'bin'))
    .filter((dir) => ['initdb', 'pg_ctl', 'postgres', 'pg_dump', 'pg_restore'].every((tool) => existsSync(join(dir, tool))));
}

/**
 * The test run's own Postgres when a pg_dump of its major or newer is installed. Otherwise (the
 * embedded server is PostgreSQL 18, and Debian 12 ships the version 15 client tools) a throwaway
 * server started here, in a temporary folder on a free port, from the newest local server binaries
 * that come with their own pg_dump. Fails, saying what to install, when there are none.
 */
export async function dumpablePostgres(): Promise<DumpablePostgres> {
  const major = await serverMajor(testEnv.databaseUrl);
  const fits = await findPgTool('pg_dump', major).then(
    () => true,
    () => false,
  );
  if (fits) return { createDatabase: (name) => createDatabaseOn(testEnv.databaseUrl, name), stop: async () => undefined };

  const binDir = localServerBinDirs()[0];
  if (!binDir) throw new Error(`No pg_dump can dump the test server (PostgreSQL ${major}), and no local server binaries with their pg_dump were found: install postgresql-client-${major}, or postgresql-15 (server and client).`);
  const dir = mkdtempSync(join(tmpdir(), 'mps-pg-dumpable-'));
  const data = join(dir, 'data');
  // initdb and postgres refuse to run as root: as root, they run as the postgres user.
  const asRoot = process.getuid?.() === 0;
  const user = asRoot ? { uid: Number(execFileSync('id', ['-u', 'postgres']).toString()), gid: Number(execFileSync('id', ['-g', 'postgres']).toString()) } : {};
  if (asRoot) chownSync(dir, user.uid!, user.gid!);
  const port = await freePort();
  await run(join(binDir, 'initdb'), ['-D', data, '-U', 'postgres', '--auth=trust', '-E', 'UTF8', '--no-sync'], { ...user, cwd: dir });
  await run(join(binDir, 'pg_ctl'), ['-D', data, '-l', join(dir, 'log'), '-w', '-o', `-p ${port} -c listen_addresses=127.0.0.1 -k ${dir} -c fsync=off`, 'start'], { ...user, cwd: dir });
  const url = `postgres://postgres@127.0.0.1:${port}/postgres`;
  return {
    binDir,
    createDatabase: (name) => createDatabaseOn(url, name),
    stop: async () => {
      await run(join(binDir, 'pg_ctl'), ['-D', data, '-m', 'immediate', 'stop'], { ...user, cwd: dir }).catch(() => undefined);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
