import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { basename } from 'node:path';
import type { Knex } from 'knex';
import { BackupError, connectionFor, findPgTool, runTool } from './pg-tools.js';

/** Written beside each dump as `<dump>.manifest.json`; restore trusts the dump only if it matches. */
export interface BackupManifest {
  format: 'pg_dump custom';
  file: string;
  bytes: number;
  sha256: string;
  /** The latest applied migration: the code version able to run on the restored copy. */
  migration: string;
  server_version: string;
  pg_dump_version: string;
  /** Postgres now() just before the dump's snapshot: what committed later is not in it. */
  created_at: string;
}

export const manifestPath = (dump: string) => `${dump}.manifest.json`;

async function sha256File(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

async function serverVersion(db: Knex): Promise<{ version: string; major: number }> {
  const { rows } = await db.raw<{ rows: { version: string; num: string }[] }>(`SELECT current_setting('server_version') AS version, current_setting('server_version_num') AS num`);
  return { version: rows[0]!.version, major: Math.floor(Number(rows[0]!.num) / 10_000) };
}

async function latestMigration(db: Knex): Promise<string | undefined> {
  const { rows } = await db.raw<{ rows: { name: string }[] }>(`SELECT name FROM knex_migrations ORDER BY id DESC LIMIT 1`).catch(() => ({ rows: [] }));
  return rows[0]?.name;
}

/** Tables, views and sequences outside the system schemas (a new database from template1 has none). */
async function userRelations(db: Knex): Promise<string[]> {
  const { rows } = await db.raw<{ rows: { name: string }[] }>(`
    SELECT n.nspname || '.' || c.relname AS name FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')
       AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp%'
     ORDER BY 1`);
  return rows.map((r) => r.name);
}

/**
 * pg_dump in custom format (compressed; pg_restore can pick objects and run in parallel) of one
 * consistent snapshot, taken while the engine runs, to `out`, then its manifest. The dump is written
 * under a temporary name and renamed once complete, so a dump that exists under its name is whole.
 */
export async function backup(db: Knex, databaseUrl: string, options: { out?: string; binDir?: string } = {}): Promise<{ file: string; manifest: BackupManifest }> {
  const migration = await latestMigration(db);
  if (!migration) throw new BackupError('This database has no applied migrations: it is not an MPS database (check DATABASE_URL).');
  const server = await serverVersion(db);
  const pgDump = await findPgTool('pg_dump', server.major, options.binDir);
  const { rows } = await db.raw<{ rows: { now: Date }[] }>('SELECT now() AS now');
  const createdAt = rows[0]!.now;
  const file = options.out ?? `mps-backup-${createdAt.toISOString().replace(/[:.]/g, '-')}.dump`;
  const partial = `${file}.partial`;
  const { dbname, env } = connectionFor(databaseUrl);
  try {
    await runTool(pgDump, ['--format=custom', `--file=${partial}`, `--dbname=${dbname}`], env);
    await rename(partial, file);
  } finally {
    await rm(partial, { force: true });
  }
  const manifest: BackupManifest = {
    format: 'pg_dump custom',
    file: basename(file),
    bytes: (await stat(file)).size,
    sha256: await sha256File(file),
    migration,
    server_version: server.version,
    pg_dump_version: pgDump.version,
    created_at: createdAt.toISOString(),
  };
  await writeFile(manifestPath(file), `${JSON.stringify(manifest, null, 2)}\n`);
  return { file, manifest };
}

async function readManifest(file: string): Promise<BackupManifest> {
  let text: string;
  try {
    text = await readFile(manifestPath(file), 'utf8');
  } catch {
    throw new BackupError(`No manifest at ${manifestPath(file)}: a dump is restored only with the manifest written beside it.`);
  }
  const manifest = JSON.parse(text) as BackupManifest;
  if (manifest.format !== 'pg_dump custom' || !/^[0-9a-f]{64}$/.test(manifest.sha256 ?? '')) throw new BackupError(`${manifestPath(file)} is not an MPS backup manifest.`);
  return manifest;
}

/**
 * Restores a dump into the EMPTY database of `databaseUrl`, all or nothing (one transaction), after
 * checking it against its manifest. Refuses a database that holds anything: restoring over live data
 * would mix two histories.
 */
export async function restore(db: Knex, databaseUrl: string, file: string, options: { binDir?: string } = {}): Promise<BackupManifest> {
  const manifest = await readManifest(file);
  const actual = await sha256File(file);
  if (actual !== manifest.sha256) {
    throw new BackupError(`Checksum mismatch for ${file}: the manifest says ${manifest.sha256}, the file is ${actual}. The dump is damaged or not the one its manifest describes; nothing was restored.`);
  }
  const existing = await userRelations(db);
  if (existing.length) {
    const { rows } = await db.raw<{ rows: { name: string }[] }>('SELECT current_database() AS name');
    throw new BackupError(
      `Database "${rows[0]!.name}" is not empty (${existing.length} relations, e.g. ${existing.slice(0, 3).join(', ')}): restore only into a new, empty database (CREATE DATABASE …), then point the engine at it.`,
    );
  }
  const pgRestore = await findPgTool('pg_restore', Number.parseInt(manifest.pg_dump_version, 10), options.binDir);
  const { dbname, env } = connectionFor(databaseUrl);
  await runTool(pgRestore, ['--exit-on-error', '--single-transaction', '--no-owner', `--dbname=${dbname}`, file], env);
  const migration = await latestMigration(db);
  if (migration !== manifest.migration) throw new BackupError(`Restored, but the latest migration is ${migration ?? 'none'} where the manifest says ${manifest.migration}.`);
  return manifest;
}
