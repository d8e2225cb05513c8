import { Job, type JobsOptions, type Queue } from 'bullmq';
import type { ChainableCommander } from 'ioredis';
import type { Deps } from '../app/deps.js';
import type { Config } from '../config/env.js';
import { Batcher, groupBy, perOwner } from '../db/batcher.js';

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
 * enqueues of the process share one pipeline per partition (db/batcher.ts).
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
 * The operations' jobs in one pipeline, whichever partitions they are on: every queue's keys live
 * on the one Redis (this is what BullMQ's addBulk does for one queue). A Cluster keeps a pipeline
 * to one slot, so there it is one addBulk per partition.
 */
async function addJobs(deps: Deps, ops: Enqueueable[]): Promise<void[]> {
  const { partitions } = deps.queues;
  const jobOf = (op: Enqueueable) => ({ name: op.type, data: { operationId: op.id }, opts: operationJobOptions(deps.config, op.id) });
  if (deps.redis.isCluster) {
    await Promise.all([...groupBy(ops, (op) => op.partition)].map(([partition, jobs]) => partitions[partition]!.addBulk(jobs.map(jobOf))));
    return ops.map(() => undefined);
  }
  const queues = ops.map((op) => partitions[op.partition]!);
  // Every queue shares the one client, and defines its scripts on it once it is ready.
  const [client] = await Promise.all(queues.map((queue) => queue.client));
  const pipeline = client!.pipeline();
  // Each addJob queues its script on the pipeline at once (and would reject on options BullMQ refuses).
  const added = ops.map((op, i) => {
    const { name, data, opts } = jobOf(op);
    return new Job(queues[i]!, name, data, opts, op.id).addJob(pipeline);
  });
  const [results] = await Promise.all([pipeline.exec(), Promise.all(added)]);
  throwFirstError(results);
  return ops.map(() => undefined);
}

/** What removeJobs uses of BullMQ's Scripts, which it keeps protected: the removal script's name and arguments. */
interface RemovalScript {
  version: string;
  removeArgs(jobId: string, removeChildren: boolean): (string | number)[];
}

/**
 * Removes jobs of one queue in one round trip: BullMQ's own removal script for each, pipelined,
 * where Queue.remove sends a command per job; `first` adds commands to send before them. A job
 * that is running is left alone (its script answers 0), as Queue.remove leaves it. One queue's
 * keys share a hash slot, so this also holds on a Redis Cluster.
 */
export async function removeJobs(queue: Queue, ids: readonly string[], first?: (pipeline: ChainableCommander) => unknown): Promise<void> {
  if (!ids.length) return;
  const scripts = queue.scripts as unknown as RemovalScript;
  const pipeline = (await queue.client).pipeline();
  // BullMQ types the pipeline by what it uses of it; MPS gives BullMQ ioredis clients, so it is an ioredis pipeline.
  first?.(pipeline as unknown as ChainableCommander);
  for (const id of ids) pipeline.runCommand(`removeJob:${scripts.version}`, scripts.removeArgs(id, true));
  throwFirstError(await pipeline.exec());
}

/** A pipeline answers every command, failed or not: throws the first error among its answers. */
function throwFirstError(results: [Error | null, unknown][] | null): void {
  const failure = results?.find(([err]) => err);
  if (failure) throw failure[0];
}
