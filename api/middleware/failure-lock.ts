import type { Deps } from '../../app/deps.js';
import { AppError, type ErrorCode } from '../../domain/errors.js';

// Counts a failure; the count lives `lockMs` from the first failure, and from the one that reaches the limit.
const FAIL = `local n = redis.call('INCR', KEYS[1]) if n == 1 or n >= tonumber(ARGV[2]) then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end return n`;

/**
 * A lock on a subject (e.g. a card number) after `maxFailures` failures from any caller, for
 * `lockSeconds`. Shared by all API processes through Redis; like the rate limits it fails open
 * when Redis is down (the per-caller limit and bcrypt's cost still slow guessing).
 */
export function failureLock(deps: Pick<Deps, 'redis' | 'config' | 'logger'>, bucket: string, maxFailures: number, lockSeconds: number, code: ErrorCode) {
  const key = (subject: string) => `${deps.config.QUEUE_PREFIX}:${bucket}:${subject}`;
  const quietly = async <T>(what: () => Promise<T>): Promise<T | undefined> => {
    try {
      return await what();
    } catch (err) {
      deps.logger.warn({ err: (err as Error).message, bucket }, 'failure lock unavailable; allowing');
      return undefined;
    }
  };
  return {
    async assertOpen(subject: string): Promise<void> {
      const state = await quietly(() => deps.redis.multi().get(key(subject)).pttl(key(subject)).exec());
      const failures = Number(state?.[0]?.[1] ?? 0);
      if (failures < maxFailures) return;
      const retryAfter = Math.max(1, Math.ceil(Number(state?.[1]?.[1] ?? lockSeconds * 1000) / 1000));
      throw new AppError(code, `Too many wrong attempts; locked for ${retryAfter} s`, { retry_after_s: retryAfter });
    },
    async countFailure(subject: string): Promise<void> {
      await quietly(() => deps.redis.eval(FAIL, 1, key(subject), lockSeconds * 1000, maxFailures));
    },
  };
}
