import client from 'prom-client';
import { RISK_RULES } from '../domain/risk-rules.js';

/** Every label set an alert counts with increase() or rate(): a series born at 1 would hide the first event after a restart. */
export const COUNTED_FROM_ZERO = {
  webhookOutcomes: ['delivered', 'retry', 'failed', 'gone'],
  riskRules: [...Object.keys(RISK_RULES), 'operation_internal_error'],
  jobQueues: ['card-ops', 'maintenance', 'webhooks'],
  jobOutcomes: ['completed', 'retry', 'failed'],
} as const;

/** One registry per process (or per test system), so tests never see each other's counts. */
export function createMetrics() {
  const registry = new client.Registry();
  client.collectDefaultMetrics({ register: registry });
  const httpRequests = new client.Counter({
    name: 'mps_http_requests_total',
    help: 'HTTP requests by method, route and status',
    labelNames: ['method', 'route', 'status'] as const,
    registers: [registry],
  });
  const httpDuration = new client.Histogram({
    name: 'mps_http_request_duration_seconds',
    help: 'HTTP request duration by method and route',
    labelNames: ['method', 'route'] as const,
    buckets: [0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [registry],
  });
  const operations = new client.Counter({
    name: 'mps_operations_total',
    help: 'Operations reaching a terminal status, by type, status and error code',
    labelNames: ['type', 'status', 'code'] as const,
    registers: [registry],
  });
  const operationLatency = new client.Histogram({
    name: 'mps_operation_accept_to_done_seconds',
    help: 'Time from acceptance (operation row written) to terminal status',
    labelNames: ['type'] as const,
    buckets: [0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
    registers: [registry],
  });
  const jobs = new client.Counter({
    name: 'mps_jobs_total',
    help: 'Jobs run by queue kind and outcome (completed, retry, failed)',
    labelNames: ['queue', 'outcome'] as const,
    registers: [registry],
  });
  const jobWait = new client.Histogram({
    name: 'mps_job_wait_seconds',
    help: 'Time from enqueue to a worker starting the job, by queue kind',
    labelNames: ['queue'] as const,
    buckets: [0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [registry],
  });
  const qrEvents = new client.Counter({
    name: 'mps_qr_events_total',
    help: 'QR events: issued, revoked, used, invalid, expired',
    labelNames: ['event'] as const,
    registers: [registry],
  });
  const reconciled = new client.Counter({
    name: 'mps_reconciler_reenqueued_total',
    help: 'Operations re-enqueued by the reconciler',
    registers: [registry],
  });
  const riskAlerts = new client.Counter({
    name: 'mps_risk_alerts_total',
    help: 'Risk alerts raised, by rule',
    labelNames: ['rule'] as const,
    registers: [registry],
  });
  const webhookDeliveries = new client.Counter({
    name: 'mps_webhook_deliveries_total',
    help: 'Webhook delivery attempts by outcome (delivered, retry, failed, gone)',
    labelNames: ['outcome'] as const,
    registers: [registry],
  });
  for (const outcome of COUNTED_FROM_ZERO.webhookOutcomes) webhookDeliveries.inc({ outcome }, 0);
  for (const rule of COUNTED_FROM_ZERO.riskRules) riskAlerts.inc({ rule }, 0);
  for (const queue of COUNTED_FROM_ZERO.jobQueues) for (const outcome of COUNTED_FROM_ZERO.jobOutcomes) jobs.inc({ queue, outcome }, 0);
  // Registered by the process that samples them (workers/probes.ts): a web process exporting a
  // default 0 would claim Postgres is down.
  let probeGauges: { oldestOpenOperationAge: client.Gauge; postgresUp: client.Gauge } | undefined;
  const probes = () =>
    (probeGauges ??= {
      oldestOpenOperationAge: new client.Gauge({
        name: 'mps_operation_oldest_open_age_seconds',
        help: 'Age of the oldest queued or processing operation (0 when none), by Postgres clock, sampled on a timer by workers',
        registers: [registry],
      }),
      postgresUp: new client.Gauge({
        name: 'mps_postgres_up',
        help: '1 when the last probe query reached Postgres, else 0',
        registers: [registry],
      }),
    });
  const schedulerLastTick = new client.Gauge({
    name: 'mps_scheduler_last_tick_timestamp_seconds',
    help: 'When the scheduler last enqueued each tick (unix seconds)',
    labelNames: ['tick'] as const,
    registers: [registry],
  });
  let redisMemory: (() => Promise<string>) | undefined;
  const readRedisMemory = async () => (redisMemory ? parseRedisMemory(await redisMemory().catch(() => '')) : undefined);
  new client.Gauge({
    name: 'mps_redis_memory_used_bytes',
    help: 'Redis used_memory, read at scrape',
    registers: [registry],
    async collect() {
      this.reset();
      const memory = await readRedisMemory();
      if (memory) this.set(memory.used);
    },
  });
  new client.Gauge({
    name: 'mps_redis_maxmemory_bytes',
    help: 'Redis maxmemory (0 = no limit), read at scrape',
    registers: [registry],
    async collect() {
      this.reset();
      const memory = await readRedisMemory();
      if (memory) this.set(memory.max);
    },
  });
  // Queue depth is read from Redis when Prometheus scrapes, not kept up to date on every job.
  let queueCounts: (() => Promise<{ queue: string; counts: Record<string, number> }[]>) | undefined;
  new client.Gauge({
    name: 'mps_queue_jobs',
    help: 'Jobs per queue and state (waiting, active, delayed, failed, completed, prioritized), read at scrape',
    labelNames: ['queue', 'state'] as const,
    registers: [registry],
    async collect() {
      if (!queueCounts) return;
      this.reset();
      try {
        for (const { queue, counts } of await queueCounts()) for (const [state, n] of Object.entries(counts)) this.set({ queue, state }, n);
      } catch {
        // Redis unreachable: the gauge is left empty rather than failing the whole scrape.
      }
    },
  });
  const trackQueues = (source: typeof queueCounts) => {
    queueCounts = source;
  };
  /** `source` answers Redis `INFO memory`. */
  const trackRedisMemory = (source: typeof redisMemory) => {
    redisMemory = source;
  };
  return {
    jobWait,
    trackQueues,
    trackRedisMemory,
    webhookDeliveries,
    registry,
    httpRequests,
    httpDuration,
    operations,
    operationLatency,
    jobs,
    qrEvents,
    reconciled,
    riskAlerts,
    probes,
    schedulerLastTick,
  };
}

/** used_memory and maxmemory from Redis `INFO memory`, or undefined when the answer has neither. */
export function parseRedisMemory(info: string): { used: number; max: number } | undefined {
  const field = (name: string) => Number(new RegExp(`^${name}:(\\d+)`, 'm').exec(info)?.[1] ?? NaN);
  const used = field('used_memory');
  const max = field('maxmemory');
  return Number.isFinite(used) && Number.isFinite(max) ? { used, max } : undefined;
}

export type Metrics = ReturnType<typeof createMetrics>;
