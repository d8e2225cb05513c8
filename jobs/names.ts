export { partitionOf, partitionSql } from '../domain/partition.js';

/** Maintenance jobs the scheduler enqueues (issue-owned handlers register under these names). */
export const MAINTENANCE_JOBS = ['reconcile', 'rotate-qr', 'settlement', 'cleanup', 'detect-anomalies', 'relay-outbox', 'report-rollup'] as const;
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
