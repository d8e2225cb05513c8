import type { Deps } from '../app/deps.js';
import {
  purgeFailedOperations,
  purgeFinishedDeliveries,
  purgeQrHistory,
  purgeRelayedEvents,
  purgeResolvedAlerts,
  releaseIdempotencyKeys,
} from '../db/queries/retention.js';
import { auditArchiveStep } from './archive-audit.js';
import { runInBatches, type BatchStep, type StepReport } from './batches.js';

const FINISHED_JOB_GRACE_MS = 24 * 3600 * 1000;

export interface CleanupReport {
  /** Rows removed (or, for idempotency keys, released) per kind. */
  removed: Record<string, number>;
  steps: Record<string, StepReport>;
  /** False when CLEANUP_TIME_BUDGET_S ran out; the next run goes on where this one stopped. */
  finished: boolean;
}

/**
 * Retention, in batches of CLEANUP_BATCH_SIZE rows with a commit each and a time budget per run:
 * ended QR history, idempotency keys (the operation stays), failed operations, relayed outbox events,
 * finished webhook deliveries, resolved alerts, audit events (archived behind a checkpoint), and
 * finished jobs in Redis. Transactions, ledgers, settlements and succeeded operations are the
 * financial record and are never touched.
 */
export async function runCleanup(deps: Deps): Promise<CleanupReport> {
  const { db, config } = deps;
  const step = (name: string, run: (limit: number) => Promise<number>): BatchStep => ({ name, run });
  const steps = [
    step('qrHistory', (n) => purgeQrHistory(db, config.QR_HISTORY_DAYS, n)),
    step('idempotencyKeys', (n) => releaseIdempotencyKeys(db, config.IDEMPOTENCY_TTL_H, n)),
    step('failedOperations', (n) => purgeFailedOperations(db, config.OPERATION_RETENTION_DAYS, n)),
    // Redelivery of a kept delivery reads its event, so events stay at least as long as deliveries.
    step('outboxEvents', (n) => purgeRelayedEvents(db, Math.max(config.OUTBOX_RETENTION_DAYS, config.WEBHOOK_RETENTION_DAYS), n)),
    step('webhookDeliveries', (n) => purgeFinishedDeliveries(db, config.WEBHOOK_RETENTION_DAYS, n)),
    step('resolvedAlerts', (n) => purgeResolvedAlerts(db, config.ALERT_RETENTION_DAYS, n)),
    auditArchiveStep(deps),
  ];
  const reports = await runInBatches(steps, { batchSize: config.CLEANUP_BATCH_SIZE, budgetMs: config.CLEANUP_TIME_BUDGET_S * 1000, pauseMs: config.CLEANUP_BATCH_PAUSE_MS });
  const removed = Object.fromEntries(Object.entries(reports).map(([name, r]) => [name, r.rows]));
  let finishedJobs = 0;
  for (const queue of deps.queues.all()) {
    finishedJobs += (await queue.clean(FINISHED_JOB_GRACE_MS, 10_000, 'completed')).length;
    finishedJobs += (await queue.clean(7 * FINISHED_JOB_GRACE_MS, 10_000, 'failed')).length;
  }
  removed.finishedJobs = finishedJobs;
  const finished = Object.values(reports).every((r) => r.finished);
  deps.logger.info({ removed, finished, longest_statement_ms: Math.max(...Object.values(reports).map((r) => r.longestMs)) }, 'cleanup');
  return { removed, steps: reports, finished };
}
