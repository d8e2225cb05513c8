import type { JobsOptions } from 'bullmq';
import type { Deps } from '../app/deps.js';
import type { Config } from '../config/env.js';
import { Batcher, perOwner } from '../db/batcher.js';

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

type Enqueueable = { id: string; type: string; partition: number };

/**
 * Enqueues an operation's job on its partition (the job name is its type). Redis trouble does not
 * lose the operation: its row is committed, and the reconciler enqueues it later. Concurrent
 * enqueues of the process share one call per partition (db/batcher.ts).
 */
export async function enqueueOperation(deps: Deps, op: Enqueueable): Promise<void> {
  try {
    await enqueues(deps).submit(op);
  } catch (err) {
    deps.logger.warn({ err: (err as Error).message, operation_id: op.id }, 'enqueue failed; the reconciler will enqueue it');
  }
}

const enqueues = perOwner((deps: Deps) => new Batcher<Enqueueable, void>({ many: (ops) => addJobs(deps, ops), one: async (op) => void (await addJobs(deps, [op])) }, 256, 2));

/**
 * One call per partition the operations are on: addBulk (a pipeline) for several jobs, add for a
 * lone one (an ioredis pipeline copies every script defined on the connection, BullMQ's ~50, as it
 * is made: dearer than the one command it would carry).
 */
async function addJobs(deps: Deps, ops: Enqueueable[]): Promise<void[]> {
  const byPartition = new Map<number, Enqueueable[]>();
  for (const op of ops) {
    const jobs = byPartition.get(op.partition);
    if (jobs) jobs.push(op);
    else byPartition.set(op.partition, [op]);
  }
  const job = (op: Enqueueable) => ({ name: op.type, data: { operationId: op.id }, opts: operationJobOptions(deps.config, op.id) });
  await Promise.all(
    [...byPartition].map(([partition, jobs]) => {
      const queue = deps.queues.partitions[partition]!;
      if (jobs.length > 1) return queue.addBulk(jobs.map(job));
      const { name, data, opts } = job(jobs[0]!);
      return queue.add(name, data, opts);
    }),
  );
  return ops.map(() => undefined);
}
