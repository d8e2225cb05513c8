import type { NextFunction, Request, Response } from 'express';
import { Cluster } from 'ioredis';
import type { Deps } from '../../app/deps.js';
import type { RedisClient } from '../../config/redis.js';
import { Batcher } from '../../db/batcher.js';
import { AppError } from '../../domain/errors.js';

// Counts a hit and gives the window's key its expiry on the first one: one command per check
// (a MULTI of INCR and PEXPIRE is four, and builds an ioredis pipeline every time). Sent by its
// SHA (EVALSHA), not its text, and the hits of concurrent requests share one pipeline.
const HIT = `local n = redis.call('INCR', KEYS[1]) if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end return n`;

interface Hit {
  key: string;
  ttlMs: number;
}
interface CountsHits {
  mpsCountHit(key: string, ttlMs: number): Promise<unknown>;
}

const hitCounters = new WeakMap<RedisClient, Batcher<Hit, number>>();

/** The process's counter of hits on `redis`: one pipeline for the hits of a moment (one at a time on a Cluster, whose pipelines stay in one slot). */
function hitCounter(redis: RedisClient): Batcher<Hit, number> {
  let counter = hitCounters.get(redis);
  if (!counter) {
    redis.defineCommand('mpsCountHit', { numberOfKeys: 1, lua: HIT });
    const one = async ({ key, ttlMs }: Hit) => Number(await (redis as unknown as CountsHits).mpsCountHit(key, ttlMs));
    const many = async (hits: Hit[]) => {
      if (redis instanceof Cluster) return Promise.all(hits.map(one));
      const pipeline = redis.pipeline();
      for (const { key, ttlMs } of hits) (pipeline as unknown as CountsHits).mpsCountHit(key, ttlMs);
      return ((await pipeline.exec()) ?? []).map(([err, count]) => {
        if (err) throw err;
        return Number(count);
      });
    };
    counter = new Batcher({ many, one }, 256, 2);
    hitCounters.set(redis, counter);
  }
  return counter;
}

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
  const windowMs = 60_000;
  const now = Date.now();
  const window = Math.floor(now / windowMs);
  const key = `${deps.config.QUEUE_PREFIX}:rl:${bucket}:${id}:${window}`;
  let count: number;
  try {
    count = await hitCounter(deps.redis).submit({ key, ttlMs: windowMs + 1000 });
  } catch (err) {
    deps.logger.warn({ err: (err as Error).message, bucket }, 'rate limiter unavailable; allowing');
    return;
  }
  if (count > perMinute) {
    const retryAfter = Math.max(1, Math.ceil(((window + 1) * windowMs - now) / 1000));
    throw new AppError('RATE_LIMITED', `Too many requests (${bucket}); retry after ${retryAfter} s`, { retry_after_s: retryAfter, bucket });
  }
}
