import type { Deps } from '../config/deps.js';

const FINISHED_JOB_GRACE_MS = 24 * 3600 * 1000;

/**
 * Weekly retention: QR history, idempotency keys, finished jobs, old webhook deliveries and
 * resolved alerts. Transactions, ledgers and audit events are the record and are never touched.
 */
export async function runCleanup(deps: Deps): Promise<Record<string, number>> {
  const { db, config } = deps;
  const qrHistory = await db('card_qr_history')
    .whereNotNull('end_reason')
    .andWhere('issued_at', '<', db.raw('now() - make_interval(days => ?)', [config.QR_HISTORY_DAYS]))
    .del();
  // The operation stays; only its idempotency key is released after IDEMPOTENCY_TTL_H.
  const idempotencyKeys = await db('operations')
    .whereNotNull('idempotency_key')
    .whereIn('status', ['succeeded', 'failed'])
    .andWhere('created_at', '<', db.raw('now() - make_interval(hours => ?)', [config.IDEMPOTENCY_TTL_H]))
    .update({ idempotency_key: null });
  const webhookDeliveries = await db('webhook_deliveries')
    .whereIn('status', ['delivered', 'failed'])
    .andWhere('created_at', '<', db.raw('now() - make_interval(days => ?)', [config.WEBHOOK_RETENTION_DAYS]))
    .del();
  const resolvedAlerts = await db('risk_alerts')
    .where('status', 'resolved')
    .andWhere('resolved_at', '<', db.raw('now() - make_interval(days => ?)', [config.ALERT_RETENTION_DAYS]))
    .del();
  let finishedJobs = 0;
  for (const queue of deps.queues.all()) {
    finishedJobs += (await queue.clean(FINISHED_JOB_GRACE_MS, 10_000, 'completed')).length;
    finishedJobs += (await queue.clean(7 * FINISHED_JOB_GRACE_MS, 10_000, 'failed')).length;
  }
  const removed = { qrHistory, idempotencyKeys, webhookDeliveries, resolvedAlerts, finishedJobs };
  deps.logger.info(removed, 'cleanup');
  return removed;
}
