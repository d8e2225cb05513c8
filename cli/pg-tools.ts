import { execFile } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** Refused drills: the message says what is wrong and what to do; the CLI prints it and exits 1. */
export class BackupError extends Error {}

export interface PgTool {
  path: string;
  /** As `--version` prints it, e.g. "15.18". */
  version: string;
  major: number;
}

/** Debian and Ubuntu keep each major's client tools in /usr/lib/postgresql/<major>/bin. */
const DEBIAN_ROOT = '/usr/lib/postgresql';

function candidates(name: string, binDir: string | undefined): string[] {
  const dirs = [binDir, ...(existsSync(DEBIAN_ROOT) ? readdirSync(DEBIAN_ROOT).map((major) => join(DEBIAN_ROOT, major, 'bin')) : [])].filter((d): d is string => !!d);
  const paths = dirs.map((d) => join(d, name)).filter((p) => existsSync(p));
  return [...new Set([...paths, name])]; // the bare name: whatever PATH has
}

async function versionOf(path: string): Promise<PgTool | undefined> {
  try {
    const { stdout } = await run(path, ['--version']);
    const match = /\(PostgreSQL\)\s+(\d+)(?:\.(\d+))?/.exec(stdout);
    return match ? { path, version: match[2] ? `${match[1]}.${match[2]}` : match[1]!, major: Number(match[1]) } : undefined;
  } catch {
    return undefined; // not installed there
  }
}

/**
 * The pg_dump or pg_restore to use: one of major `minMajor` or newer (pg_dump refuses a newer server,
 * pg_restore an archive from a newer pg_dump). PG_BIN_DIR's when it qualifies, else the newest found.
 */
export async function findPgTool(name: 'pg_dump' | 'pg_restore', minMajor: number, binDir?: string): Promise<PgTool> {
  const found = (await Promise.all(candidates(name, binDir).map(versionOf))).filter((t): t is PgTool => !!t);
  const fit = found.filter((t) => t.major >= minMajor);
  const preferred = fit.find((t) => binDir && t.path.startsWith(binDir)) ?? fit.sort((a, b) => b.major - a.major)[0];
  if (preferred) return preferred;
  const seen = found.length ? found.map((t) => `${t.path} (${t.version})`).join(', ') : 'none';
  throw new BackupError(
    `${name} ${minMajor} or newer is needed (the server or archive is PostgreSQL ${minMajor}); found: ${seen}.\n` +
      `Install the PostgreSQL ${minMajor} client tools (Debian: postgresql-client-${minMajor}) or point PG_BIN_DIR at a folder that has them.`,
  );
}

/**
 * libpq settings for a child process: the URL without its password (which would show in `ps`) and
 * the password in PGPASSWORD.
 */
export function connectionFor(databaseUrl: string): { dbname: string; env: NodeJS.ProcessEnv } {
  const url = new URL(databaseUrl);
  const password = decodeURIComponent(url.password);
  url.password = '';
  return { dbname: url.toString(), env: { ...process.env, ...(password ? { PGPASSWORD: password } : {}) } };
}

/** Runs a client tool; its stderr becomes the message when it fails. */
export async function runTool(tool: PgTool, args: string[], env: NodeJS.ProcessEnv): Promise<void> {
  try {
    await run(tool.path, args, { env, maxBuffer: 16 * 1024 * 1024 });
  } catch (err) {
    const stderr = (err as { stderr?: string }).stderr?.trim();
    throw new BackupError(`${tool.path} failed: ${stderr || (err as Error).message}`);
  }
}
