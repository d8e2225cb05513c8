import { createHash } from 'node:crypto';

/** The operation kinds, which are also the job names on the card partition queues. */
export type OperationType = 'payment' | 'refund' | 'recharge';

/** Maintenance jobs the scheduler enqueues (issue-owned handlers register under these names). */
export const MAINTENANCE_JOBS = ['reconcile', 'rotate-qr', 'settlement', 'cleanup', 'detect-anomalies', 'relay-outbox'] as const;
export type MaintenanceJob = (typeof MAINTENANCE_JOBS)[number];

export interface OperationPayload {
  operationId: string;
}
export interface WebhookPayload {
  deliveryId: string;
}
export type MaintenancePayload = Record<string, string | number | undefined>;

/**
 * Partition queue names carry a Redis Cluster hash tag (`{n}`), so every key of one partition
 * lives in one slot while partitions spread over the cluster.
 */
export const partitionQueueName = (partition: number) => `card-ops-{${partition}}`;
export const MAINTENANCE_QUEUE = 'maintenance-{m}';
export const WEBHOOK_QUEUE = 'webhooks-{w}';

/** Stable partition of a card: every operation of one card lands on the same queue. */
export function partitionOf(key: string, partitions: number): number {
  return createHash('sha256').update(key).digest().readUInt32BE(0) % partitions;
}

/** partitionOf in SQL, of the text `keySql` evaluates to; binds the number of partitions. */
export const partitionSql = (keySql: string) => `(('x' || left(encode(sha256(convert_to(${keySql}, 'UTF8')), 'hex'), 8))::bit(32)::bigint % ?)`;
