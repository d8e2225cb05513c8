import { statfs } from 'node:fs/promises';
import type { Redis } from 'ioredis';
import type { Deps } from '../app/deps.js';
import { describeRedis, redisServers } from '../config/redis.js';
import { migrationsCurrent } from '../db/knex.js';
import { missingCheckValues } from '../db/queries/check-constraints.js';
import { OPERATION_TYPES, REGISTRY_CHECKS } from '../operations/index.js';

type Level = 'ok' | 'warn' | 'fail';
interface Check {
  name: string;
  level: Level;
  detail: string;
}

const BACKLOG_WARN = 1000;
const DISK_FREE_WARN = 0.1;

/**
 * The report an on-call engineer wants first: are Postgres and Redis up and set as MPS needs,
 * are migrations current, is anything stuck or backing up. `fail` means act now.
 */
export async function doctor(deps: Deps): Promise<Check[]> {
  const { db, redis, config } = deps;
  const checks: Check[] = [];
  const run = async (name: string, fn: () => Promise<Omit<Check, 'name'>>) => {
    try {
      checks.push({ name, ...(await fn()) });
    } catch (err) {
      checks.push({ name, level: 'fail', detail: (err as Error).message });
    }
  };

  await run('postgres', async () => {
    const { rows } = await db.raw<{ rows: { version: string; sync: string; max_conn: string; timeout: string }[] }>(
      `SELECT version() AS version, current_setting('synchronous_commit') AS sync, current_setting('max_connections') AS max_conn, current_setting('statement_timeout') AS timeout`,
    );
    const r = rows[0]!;
    // Behind PgBouncer the timeout comes from the role; unset, a stalled query holds its partition.
    const noTimeout = r.timeout === '0' && ' — no statement_timeout: ALTER ROLE … SET statement_timeout (README "PgBouncer and read replicas")';
    return { level: r.sync === 'off' || noTimeout ? 'warn' : 'ok', detail: `${r.version.split(' on ')[0]}; synchronous_commit=${r.sync}; max_connections=${r.max_conn}; statement_timeout=${r.timeout}${noTimeout || ''}` };
  });
  if (deps.dbRead !== db) {
    await run('read replica', async () => {
      const { rows } = await deps.dbRead.raw<{ rows: { standby: boolean; lag_s: number | null }[] }>(
        `SELECT pg_is_in_recovery() AS standby, extract(epoch FROM now() - pg_last_xact_replay_timestamp())::float8 AS lag_s`,
      );
      const r = rows[0]!;
      if (!r.standby) return { level: 'warn', detail: 'DATABASE_READ_URL is not a standby (pg_is_in_recovery() is false)' };
      // The replay timestamp is the last replayed commit's: on an idle primary it grows without any lag.
      return { level: 'ok', detail: `standby; last replayed commit ${r.lag_s === null ? 'none yet' : `${Math.round(r.lag_s)} s ago`}` };
    });
  }
  await run('migrations', async () => ((await migrationsCurrent(db)) ? { level: 'ok', detail: 'current' } : { level: 'fail', detail: 'pending migrations: run `npm run cli -- migrate`' }));
  await run('operation registry', async () => {
    const problems = await missingCheckValues(db, REGISTRY_CHECKS);
    return problems.length ? { level: 'fail', detail: problems.join('; ') } : { level: 'ok', detail: `${OPERATION_TYPES.length} kinds: ${OPERATION_TYPES.join(', ')}` };
  });
  await run('redis', async () => {
    // Each master holds queues of its own: on a Cluster every one must be set right.
    const servers = redisServers(redis);
    const reports = await Promise.all(servers.map(redisSettings));
    const problems = reports.flatMap((r) => r.problems.map((p) => (servers.length > 1 ? `${r.address}: ${p}` : p)));
    const settings = [...new Set(reports.map((r) => r.settings))].join(' | ');
    return { level: problems.length ? 'fail' : 'ok', detail: `${describeRedis(config)}${servers.length > 1 ? `, ${servers.length} masters` : ''}: ${settings}${problems.length ? ` — ${problems.join('; ')}` : ''}` };
  });
  await run('queue backlog', async () => {
    const backlog = await Promise.all(
      deps.queues.all().map(async (q) => {
        const c: Record<string, number> = await q.getJobCounts('waiting', 'active', 'delayed', 'failed');
        return { name: q.name, open: (c.waiting ?? 0) + (c.active ?? 0) + (c.delayed ?? 0), failed: c.failed ?? 0 };
      }),
    );
    const worst = backlog.reduce((a, b) => (b.open > a.open ? b : a));
    const detail = backlog.filter((b) => b.open || b.failed).map((b) => `${b.name}: ${b.open} open, ${b.failed} failed`).join('; ') || 'all queues empty';
    return { level: worst.open > BACKLOG_WARN ? 'warn' : 'ok', detail };
  });
  await run('stuck operations', async () => {
    const { rows } = await db.raw<{ rows: { status: string; n: number; oldest_s: number }[] }>(
      `SELECT status, count(*)::bigint AS n, extract(epoch FROM now() - min(created_at))::bigint AS oldest_s
         FROM operations WHERE status IN ('queued', 'processing') AND created_at < now() - make_interval(secs => ?) GROUP BY status`,
      [config.RECONCILE_AFTER_S * 2],
    );
    if (!rows.length) return { level: 'ok', detail: `none open longer than ${config.RECONCILE_AFTER_S * 2} s` };
    return { level: 'fail', detail: rows.map((r) => `${r.n} ${r.status} (oldest ${r.oldest_s} s)`).join('; ') + ' — is a worker and the scheduler (reconciler) running?' };
  });
  await run('webhook deliveries', async () => {
    const { rows } = await db.raw<{ rows: { failed: number; overdue: number }[] }>(
      `SELECT count(*) FILTER (WHERE status = 'failed' AND created_at > now() - interval '24 hours')::bigint AS failed,
              count(*) FILTER (WHERE status = 'pending' AND next_attempt_at < now() - interval '5 minutes')::bigint AS overdue
         FROM webhook_deliveries`,
    );
    const r = rows[0]!;
    return { level: r.overdue ? 'fail' : r.failed ? 'warn' : 'ok', detail: `${r.failed} failed in 24 h, ${r.overdue} overdue` };
  });
  await run('risk alerts', async () => {
    const { rows } = await db.raw<{ rows: { n: number }[] }>(`SELECT count(*)::bigint AS n FROM risk_alerts WHERE status = 'open'`);
    return { level: rows[0]!.n ? 'warn' : 'ok', detail: `${rows[0]!.n} open` };
  });
  await run('disk', async () => {
    const s = await statfs(process.cwd());
    const free = s.bavail / s.blocks;
    return { level: free < DISK_FREE_WARN ? 'warn' : 'ok', detail: `${((s.bavail * s.bsize) / 2 ** 30).toFixed(1)} GiB free (${(free * 100).toFixed(0)} %) at ${process.cwd()}` };
  });
  return checks;
}

export function formatReport(checks: Check[]): string {
  const mark: Record<Level, string> = { ok: 'OK  ', warn: 'WARN', fail: 'FAIL' };
  return checks.map((c) => `${mark[c.level]}  ${c.name.padEnd(20)} ${c.detail}`).join('\n');
}

/** One server's version and the two settings MPS depends on. */
async function redisSettings(server: Redis): Promise<{ address: string; settings: string; problems: string[] }> {
  const info = await server.info('server');
  const version = /redis_version:(\S+)/.exec(info)?.[1] ?? '?';
  const [, policy] = (await server.config('GET', 'maxmemory-policy')) as string[];
  const [, aof] = (await server.config('GET', 'appendonly')) as string[];
  const problems = [policy !== 'noeviction' && `maxmemory-policy=${policy} (must be noeviction: evicted jobs are lost work)`, aof !== 'yes' && 'appendonly=no (AOF keeps queued jobs across restarts)'].filter((p): p is string => !!p);
  return { address: `${server.options.host}:${server.options.port}`, settings: `Redis ${version}; maxmemory-policy=${policy}; appendonly=${aof}`, problems };
}
