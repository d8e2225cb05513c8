import client from 'prom-client';

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
  return { jobWait, trackQueues, webhookDeliveries, registry, httpRequests, httpDuration, operations, operationLatency, jobs, qrEvents, reconciled, riskAlerts };
}

export type Metrics = ReturnType<typeof createMetrics>;
