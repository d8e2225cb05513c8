import type { Deps } from '../app/deps.js';
import { createRedis, type RedisClient } from '../config/redis.js';
import { operationDoneChannel, parseAnnouncement, type AnnouncedOperation } from '../db/operation-done.js';

const POLL_FALLBACK_MS = 1000;

/**
 * Serves `Prefer: wait=N`: one subscriber connection per API process wakes the requests waiting
 * for an operation with the outcome the worker committed, so answering takes no read. Postgres
 * stays the source of truth: a slow poll of it covers notices lost while Redis was away.
 */
export class OperationWaiter {
  private subscriber?: RedisClient;
  private stopped = false;
  private readonly waiting = new Map<string, Set<(announced?: unknown) => void>>();

  constructor(private readonly deps: Pick<Deps, 'config' | 'logger'>) {}

  async start(): Promise<void> {
    const { config, logger } = this.deps;
    // Retries forever like a worker's: a subscriber that gave up would leave waits polling for good.
    this.subscriber = createRedis(config, 'worker', (err) => logger.warn({ err: err.message }, 'redis subscriber error'), { lazyConnect: true });
    this.subscriber.on('message', (_channel: string, message: string) => {
      for (const announced of parseAnnouncement(message)) this.wake(announced.id, announced);
    });
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
   * Waits up to `ms` for `isTerminal()` to hold: takes an announced outcome as it is, and reads
   * on a slow poll (and first, unless given `first`, a value just read). The waker is registered
   * synchronously, before the first read or sleep: call waitFor before the operation can finish
   * and no notice is lost.
   */
  async waitFor<T>(operationId: string, ms: number, read: () => Promise<T>, isTerminal: (value: T) => boolean, first?: T): Promise<T> {
    const deadline = Date.now() + ms;
    let woken = false;
    let announced: T | undefined;
    let resume: (() => void) | undefined;
    const wake = (value?: unknown) => {
      woken = true;
      if (value !== undefined && isTerminal(value as T)) announced = value as T;
      resume?.();
    };
    const wakers = this.waiting.get(operationId) ?? new Set();
    this.waiting.set(operationId, wakers);
    wakers.add(wake);
    try {
      let value = first;
      for (;;) {
        value = announced ?? value ?? (await read());
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
        value = undefined;
      }
    } finally {
      wakers.delete(wake);
      if (wakers.size === 0) this.waiting.delete(operationId);
    }
  }

  private wake(operationId: string, announced?: AnnouncedOperation): void {
    const wakers = this.waiting.get(operationId);
    if (wakers) for (const wake of [...wakers]) wake(announced);
  }
}
