import { Queue, type JobsOptions } from 'bullmq';
import type { Config } from '../config/env.js';
import type { Logger } from '../config/logger.js';
import type { RedisClient } from '../config/redis.js';
import {
  MAINTENANCE_QUEUE,
  WEBHOOK_QUEUE,
  partitionQueueName,
  type MaintenancePayload,
  type WebhookPayload,
  type OperationPayload,
} from './names.js';

// Card operations' job options live with the runner that enqueues follow-ups; every producer uses the same.
export { operationJobOptions } from '../operations/enqueue.js';

export function maintenanceJobOptions(jobId: string): JobsOptions {
  return {
    jobId,
    attempts: 3,
    backoff: { type: 'exponential', delay: 1000 },
    removeOnComplete: { age: 86_400, count: 1000 },
    removeOnFail: { age: 7 * 86_400 },
  };
}

/** One job per delivery attempt: retries are scheduled as delayed jobs with their own backoff. */
export function webhookJobOptions(deliveryId: string, attempt: number, delayMs: number): JobsOptions {
  return {
    jobId: `${deliveryId}-${attempt}`, // BullMQ ids may not contain ':'
    delay: delayMs,
    attempts: 3,
    backoff: { type: 'exponential', delay: 1000 },
    removeOnComplete: { age: 3600, count: 10_000 },
    removeOnFail: { age: 7 * 86_400 },
  };
}

export interface Queues {
  partitions: Queue<OperationPayload, unknown, string>[];
  maintenance: Queue<MaintenancePayload>;
  webhooks: Queue<WebhookPayload>;
  all(): Queue[];
  close(): Promise<void>;
}

export function createQueues(config: Config, connection: RedisClient, logger: Logger): Queues {
  const opts = { connection, prefix: config.QUEUE_PREFIX };
  const onError = (name: string) => (err: Error) => logger.warn({ err: err.message, queue: name }, 'queue error');
  const make = <T>(name: string) => {
    const q = new Queue<T>(name, opts);
    q.on('error', onError(name));
    return q;
  };
  const partitions = Array.from({ length: config.CARD_PARTITIONS }, (_, p) =>
    make<OperationPayload>(partitionQueueName(p)),
  ) as Queue<OperationPayload, unknown, string>[];
  const maintenance = make<MaintenancePayload>(MAINTENANCE_QUEUE);
  const webhooks = make<WebhookPayload>(WEBHOOK_QUEUE);
  const all = () => [...partitions, maintenance, webhooks] as Queue[];
  return {
    partitions,
    maintenance,
    webhooks,
    all,
    close: async () => {
      await Promise.all(all().map((q) => q.close()));
    },
  };
}
