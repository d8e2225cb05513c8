import type { Deps } from '../app/deps.js';
import { listStaleOpen } from '../db/queries/operations.js';
import { operationJobOptions } from './queues.js';

const BATCH = 1000;

/**
 * Re-enqueues operations still open after RECONCILE_AFTER_S: Postgres is the record and Redis only
 * transport, so a job lost with Redis's data is driven again. The job id is the operation id, so a
 * job still in Redis is not doubled, and a finished operation is skipped by its worker.
 */
export async function runReconcile(deps: Deps): Promise<{ reenqueued: number }> {
  // The partitions' global concurrency lives in Redis too: re-assert it in case Redis lost its data.
  await Promise.all(deps.queues.partitions.map((q) => q.setGlobalConcurrency(1)));
  const stale = await listStaleOpen(deps.db, deps.config.RECONCILE_AFTER_S, BATCH);
  let reenqueued = 0;
  for (const op of stale) {
    const queue = deps.queues.partitions[op.partition % deps.queues.partitions.length]!;
    const existing = await queue.getJob(op.id);
    // A failed job that kept its id would block a re-add: remove it so the operation runs again.
    if (existing && (await existing.isFailed())) await existing.remove();
    else if (existing && !(await existing.isCompleted())) continue;
    else if (existing) await existing.remove();
    await queue.add(op.type, { operationId: op.id }, operationJobOptions(deps.config, op.id));
    reenqueued++;
  }
  if (reenqueued) {
    deps.metrics.reconciled.inc(reenqueued);
    deps.logger.info({ reenqueued }, 'reconciler re-enqueued open operations');
  }
  return { reenqueued };
}
