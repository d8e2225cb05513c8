import { Redis, type RedisOptions } from 'ioredis';

/**
 * Producers (the API) fail fast when Redis is down: the operation row is already durable and the
 * reconciler enqueues it later, so a request must not hang on a dead Redis.
 */
export function producerOptions(commandTimeoutMs = 2000): RedisOptions {
  // commandTimeout fails a command whose reply never comes; socketTimeout also drops such a
  // (half-open) socket and reconnects, so the next commands do not wait on it too.
  return { enableOfflineQueue: false, maxRetriesPerRequest: 1, connectTimeout: 2000, commandTimeout: commandTimeoutMs, socketTimeout: commandTimeoutMs * 2, keepAlive: 10_000, lazyConnect: false };
}

/** Workers block on Redis and must keep retrying forever (BullMQ requires maxRetriesPerRequest: null). */
export function workerOptions(): RedisOptions {
  // socketTimeout above BullMQ's longest block (drainDelay 5 s): a silent socket is dropped and reconnected.
  return { maxRetriesPerRequest: null, enableOfflineQueue: true, keepAlive: 10_000, socketTimeout: 20_000 };
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
