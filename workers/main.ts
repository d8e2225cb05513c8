import { Worker } from 'bullmq';
import type { Deps } from '../app/deps.js';
import { createRedis } from '../config/redis.js';
import { missingCheckValues } from '../db/queries/check-constraints.js';
import { REGISTRY_CHECKS } from '../operations/index.js';
import { assertHandlersComplete, deliverWebhook, maintenanceHandlers, runCardOperation } from '../jobs/index.js';
import { MAINTENANCE_QUEUE, WEBHOOK_QUEUE, partitionQueueName, type WebhookPayload, type MaintenanceJob, type MaintenancePayload, type OperationPayload } from '../jobs/names.js';
import { runJob } from './run-job.js';
import { runEntryPoint } from '../app/entry.js';
import { startOpsServer } from './ops-server.js';
import { startProbes } from './probes.js';

export interface RunningWorkers {
  workers: Worker[];
  close(): Promise<void>;
}

/**
 * One Worker per partition queue (local concurrency 1) plus the maintenance queue. Each partition
 * has global concurrency 1 in Redis, so one card's operations run one at a time across every
 * worker process, in the order they were accepted.
 */
export async function startWorkers(deps: Deps): Promise<RunningWorkers> {
  assertHandlersComplete();
  // A kind added without its migration would fail every operation of it: refuse to start instead.
  const schemaProblems = await missingCheckValues(deps.db, REGISTRY_CHECKS);
  if (schemaProblems.length) throw new Error(`The schema does not fit the operation registry:\n  - ${schemaProblems.join('\n  - ')}`);
  const { config, logger } = deps;
  await Promise.all(deps.queues.partitions.map((q) => q.setGlobalConcurrency(1)));
  const onError = (err: Error) => logger.warn({ err: err.message }, 'worker error');
  // One shared connection for the workers' commands; BullMQ opens a blocking one per worker beside it.
  const connection = createRedis(config, 'worker', onError);
  const common = { connection, prefix: config.QUEUE_PREFIX, autorun: true, lockDuration: config.JOB_LOCK_MS, stalledInterval: config.STALLED_INTERVAL_MS };

  const workers: Worker[] = [];
  for (let p = 0; p < config.CARD_PARTITIONS; p++) {
    const worker = new Worker<OperationPayload, unknown, string>(
      partitionQueueName(p),
      (job) => runJob(deps, 'card-ops', job, runCardOperation),
      { ...common, concurrency: 1 },
    );
    worker.on('error', onError);
    workers.push(worker as unknown as Worker);
  }
  const maintenance = new Worker<MaintenancePayload>(
    MAINTENANCE_QUEUE,
    (job) => {
      const handler = maintenanceHandlers[job.name as MaintenanceJob];
      if (!handler) throw new Error(`no handler for maintenance job ${job.name}`);
      return runJob(deps, 'maintenance', job, handler);
    },
    { ...common, concurrency: 2 },
  );
  maintenance.on('error', onError);
  workers.push(maintenance);
  // Deliveries wait on merchants' servers: many at once, on their own queue, so a slow endpoint
  // holds up neither payments nor other merchants' events.
  const webhooks = new Worker<WebhookPayload>(WEBHOOK_QUEUE, (job) => runJob(deps, 'webhooks', job, deliverWebhook), { ...common, concurrency: config.WEBHOOK_CONCURRENCY });
  webhooks.on('error', onError);
  workers.push(webhooks as unknown as Worker);

  await Promise.all(workers.map((w) => w.waitUntilReady()));
  return {
    workers,
    // close() lets the job in hand finish and takes no new ones.
    close: async () => {
      await Promise.all(workers.map((w) => w.close()));
      connection.disconnect();
    },
  };
}

runEntryPoint(import.meta.url, 'worker', async (deps) => {
  const running = await startWorkers(deps);
  const probes = startProbes(deps);
  // Operations, jobs, webhooks and risk alerts are counted here, where the work is done.
  const metrics = await startOpsServer(deps, deps.config.WORKER_METRICS_PORT, 'WORKER_METRICS_PORT');
  return async () => {
    probes.stop();
    metrics?.close();
    metrics?.closeAllConnections();
    await running.close();
  };
});
