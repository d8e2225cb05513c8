import type { JobsOptions } from 'bullmq';
import type { Deps } from '../app/deps.js';
import type { Config } from '../config/env.js';

/**
 * All job options of card operations in one place (CONVENTIONS.md 2): the job id is the operation
 * id, so enqueueing the same operation twice (API or runner, and the reconciler) never makes two
 * jobs while the first is queued.
 */
export function operationJobOptions(config: Config, operationId: string): JobsOptions {
  return {
    jobId: operationId,
    attempts: config.JOB_ATTEMPTS,
    backoff: { type: 'exponential', delay: config.JOB_BACKOFF_MS },
    // The operation row is the record: a finished job is dropped at once (cheapest for Redis), and
    // a later re-add of the same operation is a job whose worker finds the operation terminal.
    removeOnComplete: true,
    removeOnFail: { age: 7 * 86_400 },
  };
}

/**
 * Enqueues an operation's job on its partition (the job name is its type). Redis trouble does not
 * lose the operation: its row is committed, and the reconciler enqueues it later.
 */
export async function enqueueOperation(deps: Deps, op: { id: string; type: string; partition: number }): Promise<void> {
  try {
    await deps.queues.partitions[op.partition]!.add(op.type, { operationId: op.id }, operationJobOptions(deps.config, op.id));
  } catch (err) {
    deps.logger.warn({ err: (err as Error).message, operation_id: op.id }, 'enqueue failed; the reconciler will enqueue it');
  }
}
