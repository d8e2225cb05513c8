import type { Redis } from 'ioredis';
import type { Deps } from '../config/deps.js';
import { createRedis, workerOptions } from '../config/redis.js';

/** Redis channel on which workers announce, after commit, that an operation reached a terminal state. */
export const operationDoneChannel = (prefix: string) => `${prefix}:op-done`;

const POLL_FALLBACK_MS = 1000;

/**
 * Serves `Prefer: wait=N`: one subscriber connection per API process wakes the requests waiting
 * for an operation. Postgres stays the source of truth: a wake-up only says "read it again", and
 * a slow poll covers notices lost while Redis was away.
 */
export class OperationWaiter {
  private subscriber?: Redis;
  private stopped = false;
  private readonly waiting = new Map<string, Set<() => void>>();

  constructor(private readonly deps: Pick<Deps, 'config' | 'logger'>) {}

  async start(): Promise<void> {
    const { config, logger } = this.deps;
    this.subscriber = createRedis(config.REDIS_URL!, { ...workerOptions(), lazyConnect: true }, (err) =>
      logger.warn({ err: err.message }, 'redis subscriber error'),
    );
    this.subscriber.on('message', (_channel: string, operationId: string) => this.wake(operationId));
    // Subscribing is retried by ioredis on reconnect; a failure here only means waits fall back to polling.
    this.subscriber.connect().then(
      () => this.subscriber?.subscribe(operationDoneChannel(config.QUEUE_PREFIX)),
      (err: Error) => logger.warn({ err: err.message }, 'redis subscriber not connected; waits will poll'),
    );
  }

  /** Ends every wait in progress: each answers with what it reads now (202 if still open). */
  async stop(): Promise<void> {
    this.stopped = true;
    for (const wakers of this.waiting.values()) for (const wake of wakers) wake();
    this.subscriber?.disconnect();
  }

  /**
   * Waits up to `ms` for `isTerminal()` to hold, re-reading on every wake-up and on a slow poll.
   * The waker is registered before the first read, so a notice between read and sleep is not lost.
   */
  async waitFor<T>(operationId: string, ms: number, read: () => Promise<T>, isTerminal: (value: T) => boolean): Promise<T> {
    const deadline = Date.now() + ms;
    let woken = false;
    let resume: (() => void) | undefined;
    const wake = () => {
      woken = true;
      resume?.();
    };
    const wakers = this.waiting.get(operationId) ?? new Set();
    this.waiting.set(operationId, wakers);
    wakers.add(wake);
    try {
      for (;;) {
        const value = await read();
        const left = deadline - Date.now();
        if (isTerminal(value) || left <= 0 || this.stopped) return value;
        if (!woken) {
          await new Promise<void>((resolve) => {
            const timer = setTimeout(resolve, Math.min(POLL_FALLBACK_MS, left));
            resume = () => {
              clearTimeout(timer);
              resolve();
            };
          });
        }
        woken = false;
        resume = undefined;
      }
    } finally {
      wakers.delete(wake);
      if (wakers.size === 0) this.waiting.delete(operationId);
    }
  }

  private wake(operationId: string): void {
    const wakers = this.waiting.get(operationId);
    if (wakers) for (const wake of [...wakers]) wake();
  }
}
