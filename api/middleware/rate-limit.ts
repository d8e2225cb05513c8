import type { NextFunction, Request, Response } from 'express';
import { Cluster } from 'ioredis';
import type { Deps } from '../../app/deps.js';
import type { RedisClient } from '../../config/redis.js';
import { Batcher, perOwner } from '../../db/batcher.js';
import { AppError } from '../../domain/errors.js';

// Counts a hit on each key and gives a window's key its expiry on its first one: one command for
// the hits of concurrent requests (a MULTI of INCR and PEXPIRE would be four per hit), sent by its
// SHA (EVALSHA), not its text. On a Cluster, whose scripts keep to one slot, one call per hit.
const HITS = `local counts = {}
for i, key in ipairs(KEYS) do
  local n = redis.call('INCR', key)
  if n == 1 then redis.call('PEXPIRE', key, ARGV[1]) end
  counts[i] = n
end
return counts`;

interface CountsHits {
  mpsCountHits(keyCount: number, ...keysThenTtl: (string | number)[]): Promise<number[]>;
}

const WINDOW_MS = 60_000;
// A window's key outlives its minute a little, so a slow clock never restarts a count.
const KEY_TTL_MS = WINDOW_MS + 1000;
/** The process's counter of hits on `redis`: the keys hit at one moment go in one call. */
const hitCounter = perOwner((redis: RedisClient) => {
  redis.defineCommand('mpsCountHits', { lua: HITS });
  const count = (keys: string[]) => (redis as unknown as CountsHits).mpsCountHits(keys.length, ...keys, KEY_TTL_MS);
  const one = async (key: string) => (await count([key]))[0]!;
  const many = (keys: string[]) => (redis instanceof Cluster ? Promise.all(keys.map(one)) : count(keys));
  return new Batcher<string, number>({ many, one }, 256, 2);
});

/**
 * Fixed-window limit shared by all API processes through Redis. When Redis is down the limit
 * fails open: payments must not stop because the limiter cannot count.
 */
export function rateLimit(
  deps: Pick<Deps, 'redis' | 'config' | 'logger'>,
  bucket: string,
  perMinute: number,
  subject: (req: Request) => string | undefined,
) {
  return async (req: Request, _res: Response, next: NextFunction) => {
    const id = subject(req);
    if (!id) return next();
    try {
      await countHit(deps, bucket, perMinute, id);
      next();
    } catch (err) {
      next(err);
    }
  };
}

/** Counts one hit of `id` in `bucket`; RATE_LIMITED past `perMinute` in the current minute. For limits that need the request authorized first. */
export async function countHit(deps: Pick<Deps, 'redis' | 'config' | 'logger'>, bucket: string, perMinute: number, id: string): Promise<void> {
  const now = Date.now();
  const window = Math.floor(now / WINDOW_MS);
  const key = `${deps.config.QUEUE_PREFIX}:rl:${bucket}:${id}:${window}`;
  let count: number;
  try {
    count = await hitCounter(deps.redis).submit(key);
  } catch (err) {
    deps.logger.warn({ err: (err as Error).message, bucket }, 'rate limiter unavailable; allowing');
    return;
  }
  if (count > perMinute) {
    const retryAfter = Math.max(1, Math.ceil(((window + 1) * WINDOW_MS - now) / 1000));
    throw new AppError('RATE_LIMITED', `Too many requests (${bucket}); retry after ${retryAfter} s`, { retry_after_s: retryAfter, bucket });
  }
}
