import type { NextFunction, Request, Response } from 'express';
import type { Deps } from '../../config/deps.js';
import { AppError } from '../../domain/errors.js';

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
    const windowMs = 60_000;
    const now = Date.now();
    const window = Math.floor(now / windowMs);
    const key = `${deps.config.QUEUE_PREFIX}:rl:${bucket}:${id}:${window}`;
    let count: number;
    try {
      const result = await deps.redis.multi().incr(key).pexpire(key, windowMs + 1000).exec();
      count = Number(result?.[0]?.[1] ?? 0);
    } catch (err) {
      deps.logger.warn({ err: (err as Error).message, bucket }, 'rate limiter unavailable; allowing');
      return next();
    }
    if (count > perMinute) {
      const retryAfter = Math.max(1, Math.ceil(((window + 1) * windowMs - now) / 1000));
      return next(new AppError('RATE_LIMITED', `Too many requests (${bucket}); retry after ${retryAfter} s`, { retry_after_s: retryAfter, bucket }));
    }
    next();
  };
}
