import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createKnex, migrateLatest } from '../../../db/knex.js';
import { PgServer, RedisServer } from './servers.js';

export const TEMPLATE_DB = 'mps_faults_template';

/** The Postgres and Redis servers of the whole fault suite: started once, restarted by scenarios. */
export interface SharedServers {
  dir: string;
  pg: PgServer;
  redis: RedisServer;
}

let shared: Promise<SharedServers> | undefined;
let started: SharedServers | undefined;
const cleanups = new Set<() => void>();

async function startShared(): Promise<SharedServers> {
  const dir = mkdtempSync(join(tmpdir(), 'mps-faults-'));
  const t0 = Date.now();
  const [pg, redis] = await Promise.all([PgServer.create(join(dir, 'pg')), RedisServer.create(join(dir, 'redis'))]);
  started = { dir, pg, redis };
  // One migrated template; each scenario gets a fresh database copied from it in milliseconds.
  await pg.admin((c) => c.query(`CREATE DATABASE ${TEMPLATE_DB}`));
  const knex = createKnex(pg.url(TEMPLATE_DB), 2, () => undefined);
  await migrateLatest(knex);
  await knex.destroy();
  console.log(`  fault suite: postgres :${pg.port}, redis :${redis.port} (AOF everysec), data in ${dir}, ready in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  return started;
}

export function sharedServers(): Promise<SharedServers> {
  shared ??= startShared();
  return shared;
}

/** Registers a synchronous kill for process exit (a failing run must not leave servers behind). */
export function onExit(fn: () => void): () => void {
  cleanups.add(fn);
  return () => cleanups.delete(fn);
}

export async function stopShared(): Promise<void> {
  const s = started;
  started = undefined;
  shared = undefined;
  if (!s) return;
  await Promise.allSettled([s.pg.stop('fast'), s.redis.stop('SIGTERM')]);
  rmSync(s.dir, { recursive: true, force: true });
}

process.on('exit', () => {
  for (const fn of cleanups) fn();
  started?.pg.kill();
  started?.redis.kill();
});

// A root-level hook (this module is loaded while mocha reads the spec files): stop the shared servers once, after every file.
if (typeof after === 'function') {
  after(async function () {
    this.timeout(60_000);
    await stopShared();
  });
}
