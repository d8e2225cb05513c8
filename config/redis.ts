import { Cluster, Redis, type RedisOptions } from 'ioredis';
import type { Config } from './env.js';
import { parseRedisTarget, type RedisTarget } from './redis-target.js';

/** A client of the configured deployment: one node or Sentinel (a Redis), or a Redis Cluster. */
export type RedisClient = Redis | Cluster;

/** Producers (API, publishing, limits) fail fast; workers and subscribers wait and retry forever. */
export type RedisRole = 'producer' | 'worker';

export type RedisSettings = Pick<Config, 'REDIS_URL' | 'REDIS_CLUSTER_NODES' | 'REDIS_COMMAND_TIMEOUT_MS'>;

/**
 * Producers (the API) fail fast when Redis is down: the operation row is already durable and the
 * reconciler enqueues it later, so a request must not hang on a dead Redis.
 */
function producerOptions(commandTimeoutMs: number): RedisOptions {
  // commandTimeout fails a command whose reply never comes; socketTimeout also drops such a
  // (half-open) socket and reconnects, so the next commands do not wait on it too.
  return { enableOfflineQueue: false, maxRetriesPerRequest: 1, connectTimeout: 2000, commandTimeout: commandTimeoutMs, socketTimeout: commandTimeoutMs * 2, keepAlive: 10_000, lazyConnect: false };
}

/** Workers block on Redis and must keep retrying forever (BullMQ requires maxRetriesPerRequest: null). */
function workerOptions(): RedisOptions {
  // socketTimeout above BullMQ's longest block (drainDelay 5 s): a silent socket is dropped and reconnected.
  return { maxRetriesPerRequest: null, enableOfflineQueue: true, keepAlive: 10_000, socketTimeout: 20_000 };
}

/**
 * A master demoted by a failover keeps its sockets open and answers writes with READONLY.
 * Reconnecting finds the current master again (through the sentinels, or the cluster's slot map).
 * A worker's command is resent once reconnected (2: its offline queue holds it until then); a
 * producer's is rejected with the READONLY error (1), as any command is while Redis is away.
 */
export function reconnectOnReadonly(role: RedisRole): (err: Error) => 1 | 2 | false {
  const action = role === 'worker' ? 2 : 1;
  return (err) => (err.message.startsWith('READONLY') ? action : false);
}

export function redisConfigured(settings: Pick<Config, 'REDIS_URL' | 'REDIS_CLUSTER_NODES'>): boolean {
  return parseRedisTarget(settings) !== undefined;
}

/**
 * The one place Redis clients are made: every queue, worker, subscriber, limiter and tool gets
 * its client here, so each talks to the same deployment with the options of its role.
 */
export function createRedis(settings: RedisSettings, role: RedisRole, onError: (err: Error) => void, extra: Pick<RedisOptions, 'lazyConnect'> = {}): RedisClient {
  const target = parseRedisTarget(settings);
  if (!target) throw new Error('REDIS_URL or REDIS_CLUSTER_NODES must be set');
  const options: RedisOptions = { ...(role === 'producer' ? producerOptions(settings.REDIS_COMMAND_TIMEOUT_MS) : workerOptions()), reconnectOnError: reconnectOnReadonly(role), ...extra };
  const client = connect(target, options);
  client.on('error', onError);
  return client;
}

function connect(target: RedisTarget, options: RedisOptions): RedisClient {
  switch (target.kind) {
    case 'single':
      return new Redis(target.url, options);
    case 'sentinel': {
      const { sentinels, masterName, db, username, password, sentinelPassword } = target;
      // failoverDetector: each client also listens to the sentinels for +switch-master and
      // reconnects at once, not only when the old master drops its sockets or says READONLY.
      return new Redis({ ...options, sentinels, name: masterName, role: 'master', db, username, password, sentinelPassword, failoverDetector: true });
    }
    case 'cluster': {
      // The offline queue and lazy connect are the cluster's; the rest applies to each node's connection.
      const { enableOfflineQueue, lazyConnect, ...nodeOptions } = options;
      const { username, password, tls } = target;
      return new Cluster(target.nodes, { enableOfflineQueue, lazyConnect, redisOptions: { ...nodeOptions, username, password, ...(tls ? { tls: {} } : {}) } });
    }
  }
}

/** Resolves once the client is ready (a fail-fast client rejects commands sent before that). */
export async function whenReady(redis: RedisClient, timeoutMs = 10_000): Promise<void> {
  if (redis.status === 'ready') return;
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`Redis not ready after ${timeoutMs} ms`)), timeoutMs);
    redis.once('ready', () => {
      clearTimeout(timer);
      resolve();
    });
  });
}

/** The servers behind a client, for checks that must look at each one (a Cluster's masters). */
export function redisServers(redis: RedisClient): Redis[] {
  return redis instanceof Cluster ? redis.nodes('master') : [redis];
}

/** One line on the deployment, for logs and the doctor. */
export function describeRedis(settings: Pick<Config, 'REDIS_URL' | 'REDIS_CLUSTER_NODES'>): string {
  const target = parseRedisTarget(settings);
  if (!target) return 'not configured';
  if (target.kind === 'single') return 'one node';
  if (target.kind === 'sentinel') return `Sentinel master "${target.masterName}" (${target.sentinels.length} sentinels)`;
  return `Cluster (${target.nodes.length} seed nodes)`;
}
