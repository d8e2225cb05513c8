import { schedule, type ScheduledTask } from 'node-cron';
import type { Deps } from '../config/deps.js';
import { maintenanceJobOptions } from '../jobs/queues.js';
import type { MaintenanceJob } from '../jobs/names.js';
import { runEntryPoint } from './entry.js';

interface Tick {
  job: MaintenanceJob;
  cron: string;
  /** Width of the period a tick stands for: its start makes the job id, so two schedulers never run one period twice. */
  periodMs: number;
}

export interface RunningScheduler {
  stop(): Promise<void>;
}

/** node-cron ticks that only enqueue: the work runs on the maintenance queue, in any worker process. */
export function startScheduler(deps: Deps): RunningScheduler {
  const ticks: Tick[] = [{ job: 'reconcile', cron: deps.config.RECONCILE_CRON, periodMs: 10_000 }];
  const tasks: ScheduledTask[] = ticks.map((tick) =>
    schedule(
      tick.cron,
      async () => {
        const period = new Date(Math.floor(Date.now() / tick.periodMs) * tick.periodMs).toISOString();
        try {
          await deps.queues.maintenance.add(tick.job, { period }, maintenanceJobOptions(`${tick.job}:${period}`));
        } catch (err) {
          deps.logger.warn({ err: (err as Error).message, job: tick.job }, 'could not enqueue maintenance job');
        }
      },
      { name: tick.job, noOverlap: true },
    ),
  );
  return {
    stop: async () => {
      await Promise.all(tasks.map((t) => t.stop()));
    },
  };
}

runEntryPoint(import.meta.url, 'scheduler', async (deps) => {
  const scheduler = startScheduler(deps);
  return () => scheduler.stop();
});
