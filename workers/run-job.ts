import type { Job } from 'bullmq';
import type { Deps } from '../app/deps.js';
import { AppError } from '../domain/errors.js';
import type { Handler } from '../jobs/index.js';
import { failOperation } from '../operations/runner.js';
import { countFailedAttempt } from '../db/queries/operations.js';
import { raiseAlert } from '../db/queries/risk-alerts.js';

/** DESIGN.md §1: an operation that fails for infrastructure reasons after every attempt raises an alert. */
async function raiseInternalErrorAlert(deps: Deps, operationId: string, error: string): Promise<void> {
  try {
    const alert = await raiseAlert(deps.db, { rule: 'operation_internal_error', subject_type: 'operation', subject_id: operationId, window_start: new Date(), severity: 'critical', details: { error: error.slice(0, 500) } });
    if (alert) deps.metrics.riskAlerts.inc({ rule: 'operation_internal_error' });
  } catch (err) {
    deps.logger.error({ err: (err as Error).message, operation_id: operationId }, 'could not raise the INTERNAL_ERROR alert');
  }
}

/**
 * Runs one job with logging and metrics. Operation jobs that keep failing for infrastructure
 * reasons end their operation as INTERNAL_ERROR on the last attempt, so that every accepted
 * operation reaches a terminal state (a kind that never gives up stays open for the reconciler).
 */
export async function runJob<P>(deps: Deps, queueKind: string, job: Job<P>, handler: Handler<P>): Promise<unknown> {
  // Queue wait of first attempts (a retry's wait is mostly its backoff): enqueue, or end of delay, to start.
  if (job.attemptsMade === 0) deps.metrics.jobWait.observe({ queue: queueKind }, Math.max(0, Date.now() - job.timestamp - (job.delay ?? 0)) / 1000);
  const log = deps.logger.child({ job_id: job.id, job: job.name, queue: job.queueName, attempt: job.attemptsMade + 1 });
  try {
    const result = await handler(deps, job.data);
    deps.metrics.jobs.inc({ queue: queueKind, outcome: 'completed' });
    return result;
  } catch (err) {
    const lastAttempt = job.attemptsMade + 1 >= (job.opts.attempts ?? 1);
    const message = err instanceof Error ? err.message : String(err);
    const operationId = (job.data as { operationId?: string }).operationId;
    // Best effort (Postgres may be what failed): the attempt's own transaction rolled back with it.
    if (queueKind === 'card-ops' && operationId) await countFailedAttempt(deps.db, operationId).catch(() => undefined);
    if (lastAttempt && queueKind === 'card-ops' && operationId) {
      log.error({ err: message, operation_id: operationId }, 'operation failed after the last attempt');
      deps.metrics.jobs.inc({ queue: queueKind, outcome: 'failed' });
      const ended = await failOperation(deps, operationId, new AppError('INTERNAL_ERROR', 'The operation could not be completed; it was not applied'));
      await raiseInternalErrorAlert(deps, operationId, message);
      // A step that must not be given up (the end of a transfer) stays open: the reconciler drives it again.
      return ended.status === 'open' ? { open: 'left for the reconciler' } : { failed: 'INTERNAL_ERROR' };
    }
    log.warn({ err: message, operation_id: operationId, last_attempt: lastAttempt }, 'job attempt failed');
    deps.metrics.jobs.inc({ queue: queueKind, outcome: lastAttempt ? 'failed' : 'retry' });
    throw err;
  }
}
