import { Redis, type RedisOptions } from 'ioredis';

/**
 * Producers (the API) fail fast when Redis is down: the operation row is already durable and the
 * reconciler enqueues it later, so a request must not hang on a dead Redis.
 */
export function producerOptions(commandTimeoutMs = 2000): RedisOptions {
  // commandTimeout: a reply that never comes (half-open connection) fails like a refused one.
  return { enableOfflineQueue: false, maxRetriesPerRequest: 1, connectTimeout: 2000, commandTimeout: commandTimeoutMs, keepAlive: 10_000, lazyConnect: false };
}

/** Workers block on Redis and must keep retrying forever (BullMQ requires maxRetriesPerRequest: null). */
export function workerOptions(): RedisOptions {
  return { maxRetriesPerRequest: null, enableOfflineQueue: true, keepAlive: 10_000 };
}

export function createRedis(url: string, options: RedisOptions, onError: (err: Error) => void): Redis {
  const redis = new Redis(url, options);
  redis.on('error', onError);
  return redis;
}

/** Resolves once the client is ready (a fail-fast client rejects commands sent before that). */
export async function whenReady(redis: Redis, timeoutMs = 10_000): Promise<void> {
  if (redis.status === 'ready') return;
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`Redis not ready after ${timeoutMs} ms`)), timeoutMs);
    redis.once('ready', () => {
      clearTimeout(timer);
      resolve();
    });
  });
}
