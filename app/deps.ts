import type { Knex } from 'knex';
import type { Config } from '../config/env.js';
import { createLogger, type Logger } from '../config/logger.js';
import { createMetrics, type Metrics } from '../config/metrics.js';
import { createRedis, redisConfigured, whenReady, type RedisClient } from '../config/redis.js';
import { createKnex, type KnexOptions } from '../db/knex.js';
import { createQueues, type Queues } from '../jobs/queues.js';

/** Everything a process needs, built once by an entry point and passed down (CONVENTIONS.md 5). */
export interface Deps {
  config: Config;
  logger: Logger;
  metrics: Metrics;
  /** The primary: the money path, and every read that must see the caller's own writes. */
  db: Knex;
  /** Lists, reports, exports and settlement reads: a replica when DATABASE_READ_URL is set, else `db`. */
  dbRead: Knex;
  /** Fail-fast client for producing jobs, rate limits and publishing completions. */
  redis: RedisClient;
  queues: Queues;
}

export interface DepsOptions {
  logger?: Logger;
}

export async function createDeps(config: Config, options: DepsOptions = {}): Promise<Deps> {
  if (!config.DATABASE_URL || !redisConfigured(config)) throw new Error('DATABASE_URL and REDIS_URL (or REDIS_CLUSTER_NODES) must be set (npm start sets them for the embedded stack)');
  const logger = options.logger ?? createLogger(config.LOG_LEVEL);
  const metrics = createMetrics();
  const onDbError = (err: Error) => logger.warn({ err: err.message }, 'postgres client error');
  const db = createKnex(config.DATABASE_URL, config.DB_POOL_MAX, onDbError, poolOptions(config));
  const dbRead = config.DATABASE_READ_URL ? createKnex(config.DATABASE_READ_URL, config.DB_POOL_MAX, onDbError, poolOptions(config)) : db;
  const redis = createRedis(config, 'producer', (err) => logger.warn({ err: err.message }, 'redis producer error'));
  try {
    await whenReady(redis);
  } catch (err) {
    // The API still starts without Redis: accepted operations are durable and the reconciler enqueues them later.
    logger.warn({ err: (err as Error).message }, 'redis not reachable at startup');
  }
  const queues = createQueues(config, redis, logger);
  metrics.trackRedisMemory(() => redis.info('memory'));
  metrics.trackQueues(() => Promise.all(queues.all().map(async (q) => ({ queue: q.name, counts: await q.getJobCounts('waiting', 'active', 'delayed', 'failed', 'completed', 'prioritized') }))));
  return { config, logger, metrics, db, dbRead, redis, queues };
}

/** How the app's pools talk to Postgres, directly or through PgBouncer (README "Running in production"). */
export function poolOptions(config: Config): KnexOptions {
  const pgbouncer = config.DATABASE_POOLER === 'pgbouncer';
  return { queryTimeoutMs: config.DB_QUERY_TIMEOUT_MS, pgbouncer, preparedStatements: config.DB_PREPARED_STATEMENTS ?? !pgbouncer };
}

/** Closes in the order of CONVENTIONS.md 8: queues, then Redis, then knex (workers are closed by their owner first). */
export async function closeDeps(deps: Deps): Promise<void> {
  await deps.queues.close().catch(() => undefined);
  deps.redis.disconnect();
  await deps.db.destroy();
  if (deps.dbRead !== deps.db) await deps.dbRead.destroy();
}
