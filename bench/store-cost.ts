import { readdirSync, readFileSync } from 'node:fs';
import type { Knex } from 'knex';
import { Redis } from 'ioredis';

const TICKS_PER_S = 100;
const STORES = { postgres: 'postgres', redis: 'redis-server' } as const;

/** What Postgres and Redis did up to now: their CPU (every process of theirs on this machine) and Postgres's write counters. */
export interface StoreSnapshot {
  cpuS: Record<keyof typeof STORES, number>;
  pg: Record<'commits' | 'tuples_inserted' | 'tuples_updated' | 'tuples_deleted' | 'wal_records' | 'wal_bytes', number>;
  /** Redis's calls so far by command (INFO commandstats; a script's own calls count too), when the bench has a Redis URL. */
  redisCalls: Record<string, number>;
}

async function redisCalls(redisUrl: string | undefined): Promise<Record<string, number>> {
  if (!redisUrl) return {};
  const redis = new Redis(redisUrl, { lazyConnect: true, maxRetriesPerRequest: 1 });
  try {
    await redis.connect();
    const info = await redis.info('commandstats');
    return Object.fromEntries([...info.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)].map((m) => [m[1]!, Number(m[2])]));
  } finally {
    redis.disconnect();
  }
}

function storeCpuSeconds(): StoreSnapshot['cpuS'] {
  const cpuS = { postgres: 0, redis: 0 };
  for (const pid of readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const comm = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
      const store = (Object.keys(STORES) as (keyof typeof STORES)[]).find((s) => comm === STORES[s]);
      if (!store) continue;
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      cpuS[store] += (Number(fields[11]) + Number(fields[12])) / TICKS_PER_S;
    } catch {
      // The process ended between the listing and the read.
    }
  }
  return cpuS;
}

/**
 * Postgres and Redis's share of a charge, measured rather than guessed: CPU from /proc (a backend
 * that exits during the run takes its CPU with it, so keep the pools warm), writes from
 * pg_stat_database and pg_stat_wal. Deterministic counters such as WAL records per charge compare
 * two builds where throughput on this VM drifts.
 */
export async function storeSnapshot(db: Knex, redisUrl?: string): Promise<StoreSnapshot> {
  const { rows } = await db.raw<{ rows: Record<keyof StoreSnapshot['pg'], string>[] }>(
    `SELECT xact_commit AS commits, tup_inserted AS tuples_inserted, tup_updated AS tuples_updated, tup_deleted AS tuples_deleted,
            (SELECT wal_records FROM pg_stat_wal) AS wal_records, (SELECT wal_bytes FROM pg_stat_wal) AS wal_bytes
       FROM pg_stat_database WHERE datname = current_database()`,
  );
  const pg = Object.fromEntries(Object.entries(rows[0]!).map(([k, v]) => [k, Number(v)])) as StoreSnapshot['pg'];
  return { cpuS: storeCpuSeconds(), pg, redisCalls: await redisCalls(redisUrl) };
}

/** Per completed charge between two snapshots (the refunds and recharges of the mix ride along, as they do in the rate). */
export function storeCostPerCharge(before: StoreSnapshot, after: StoreSnapshot, charges: number) {
  const per = (a: number, b: number, scale = 1) => Math.round(((b - a) / charges) * scale * 100) / 100;
  return {
    postgres_cpu_ms: per(before.cpuS.postgres, after.cpuS.postgres, 1000),
    redis_cpu_ms: per(before.cpuS.redis, after.cpuS.redis, 1000),
    ...Object.fromEntries((Object.keys(before.pg) as (keyof StoreSnapshot['pg'])[]).map((k) => [k, per(before.pg[k], after.pg[k])])),
    // The commands sent (and run by scripts) per charge, the busiest first; the bench's own INFO calls left out.
    redis_calls: Object.fromEntries(
      Object.keys(after.redisCalls)
        .filter((c) => c !== 'info')
        .map((c) => [c, per(before.redisCalls[c] ?? 0, after.redisCalls[c]!)] as const)
        .filter(([, n]) => n >= 0.05)
        .sort((a, b) => b[1] - a[1]),
    ),
  };
}
