import { Router } from 'express';
import { schedule, type ScheduledTask, type TaskContext } from 'node-cron';
import type { Deps } from '../app/deps.js';
import { previousLocalDay } from '../db/queries/settlements.js';
import { maintenanceJobOptions } from '../jobs/queues.js';
import type { MaintenanceJob, MaintenancePayload } from '../jobs/names.js';
import { runEntryPoint } from '../app/entry.js';
import { startOpsServer } from './ops-server.js';

interface Tick {
  job: MaintenanceJob;
  cron: string;
  timezone?: string;
  /**
   * The job id and payload of one tick. Ids are deterministic (the tick's scheduled time, or the
   * day settled), so two schedulers running at once enqueue one job per period.
   */
  plan(ctx: TaskContext): Promise<{ id: string; payload: MaintenancePayload }>;
}

export interface RunningScheduler {
  /** When each tick last enqueued its job; absent until its first. */
  lastTicks(): Partial<Record<MaintenanceJob, Date>>;
  stop(): Promise<void>;
}

const byScheduledTime = (job: MaintenanceJob) => async (ctx: TaskContext) => {
  const second = Math.floor(ctx.date.getTime() / 1000);
  // BullMQ job ids may not contain ':', so the tick is named by its epoch second.
  return { id: `${job}-${second}`, payload: { at: new Date(second * 1000).toISOString() } };
};

export function schedulerTicks(deps: Deps): Tick[] {
  const { config } = deps;
  return [
    { job: 'reconcile', cron: config.RECONCILE_CRON, plan: byScheduledTime('reconcile') },
    { job: 'rotate-qr', cron: config.QR_ROTATE_CRON, plan: byScheduledTime('rotate-qr') },
    { job: 'detect-anomalies', cron: config.ANOMALY_CRON, plan: byScheduledTime('detect-anomalies') },
    { job: 'cleanup', cron: config.CLEANUP_CRON, plan: byScheduledTime('cleanup') },
    { job: 'relay-outbox', cron: config.RELAY_CRON, plan: byScheduledTime('relay-outbox') },
    // Local days: the tick's schedule follows SETTLEMENT_TZ like the days it closes.
    { job: 'report-rollup', cron: config.REPORT_ROLLUP_CRON, timezone: config.SETTLEMENT_TZ, plan: byScheduledTime('report-rollup') },
    {
      job: 'settlement',
      cron: config.SETTLEMENT_CRON,
      timezone: config.SETTLEMENT_TZ,
      // The day comes from Postgres time in SETTLEMENT_TZ, never this process's clock.
      plan: async () => {
        const day = await previousLocalDay(deps.db, config.SETTLEMENT_TZ);
        return { id: `settlement-${day}`, payload: { day } };
      },
    },
  ];
}

/** node-cron ticks that only enqueue: the work runs on the maintenance queue, in any worker process. */
export function startScheduler(deps: Deps): RunningScheduler {
  const lastTicks: Partial<Record<MaintenanceJob, Date>> = {};
  const tasks: ScheduledTask[] = schedulerTicks(deps).map((tick) =>
    schedule(
      tick.cron,
      async (ctx) => {
        try {
          const { id, payload } = await tick.plan(ctx);
          await deps.queues.maintenance.add(tick.job, payload, maintenanceJobOptions(id));
          // Only an enqueued tick counts: a scheduler that runs but cannot reach Redis is dead too.
          lastTicks[tick.job] = new Date();
          deps.metrics.schedulerLastTick.set({ tick: tick.job }, Date.now() / 1000);
        } catch (err) {
          deps.logger.warn({ err: (err as Error).message, job: tick.job }, 'could not enqueue maintenance job');
        }
      },
      { name: tick.job, noOverlap: true, ...(tick.timezone ? { timezone: tick.timezone } : {}) },
    ),
  );
  return {
    lastTicks: () => ({ ...lastTicks }),
    stop: async () => {
      await Promise.all(tasks.map((t) => t.stop()));
    },
  };
}

/** The scheduler's /health: alive, and when each tick last enqueued (the gauge on /metrics says the same). */
export function schedulerHealthRoutes(scheduler: RunningScheduler): Router {
  return Router().get('/health', (_req, res) => {
    const ticks = Object.entries(scheduler.lastTicks()).map(([tick, at]) => [tick, at.toISOString()]);
    res.json({ status: 'ok', last_ticks: Object.fromEntries(ticks) });
  });
}

runEntryPoint(import.meta.url, 'scheduler', async (deps) => {
  const scheduler = startScheduler(deps);
  const server = await startOpsServer(deps, deps.config.SCHEDULER_METRICS_PORT, 'SCHEDULER_METRICS_PORT', schedulerHealthRoutes(scheduler));
  return async () => {
    server?.close();
    server?.closeAllConnections();
    await scheduler.stop();
  };
});
