import { randomUUID } from 'node:crypto';
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { readFileSync } from 'node:fs';
import { expect } from 'chai';
import { parse as parseYaml } from 'yaml';
import { runDetectAnomalies } from '../../jobs/detect-anomalies.js';
import { runRelayOutbox } from '../../jobs/relay-outbox.js';
import { runDeliverWebhook } from '../../jobs/deliver-webhook.js';
import { createMember, createMerchant, issueCard } from '../helpers/fixtures.js';
import { charge, expectFailed, expectSucceeded, issueQr, rechargeOk, refund, sleep } from '../helpers/money.js';
import { testEnv } from '../helpers/env.js';
import { freePort } from '../../dev/stack.js';
import { startSystem, type TestSystem } from '../helpers/system.js';
import { freshDatabase } from '../helpers/fresh-database.js';
import { startProbes, type RunningProbes } from '../../workers/probes.js';
import { startScheduler, type RunningScheduler } from '../../workers/scheduler.js';

/** One sample of the Prometheus text format. */
interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

function parseSamples(text: string): Sample[] {
  const samples: Sample[] = [];
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})?\s+(\S+)$/.exec(line);
    if (!m) throw new Error(`unparseable metrics line: ${line}`);
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]!] = l[2]!;
    samples.push({ name: m[1]!, labels, value: Number(m[3]) });
  }
  return samples;
}

const matching = (samples: Sample[], name: string, labels: Record<string, string> = {}) =>
  samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
const total = (samples: Sample[], name: string, labels: Record<string, string> = {}) => matching(samples, name, labels).reduce((sum, s) => sum + s.value, 0);

/** Metric families declared by # HELP and # TYPE lines: name → type. */
function families(text: string): Map<string, string> {
  const help = new Set([...text.matchAll(/^# HELP (\S+) /gm)].map((m) => m[1]!));
  const types = new Map([...text.matchAll(/^# TYPE (\S+) (\S+)$/gm)].map((m) => [m[1]!, m[2]!]));
  for (const name of types.keys()) if (!help.has(name)) types.delete(name);
  return types;
}

/**
 * The metric family an expression's identifier refers to: itself, or for `_bucket`, `_sum` and
 * `_count` the histogram it belongs to.
 */
function familyOf(identifier: string, exported: Map<string, string>): string | undefined {
  if (exported.has(identifier)) return identifier;
  const base = identifier.replace(/_(bucket|sum|count)$/, '');
  return exported.get(base) === 'histogram' ? base : undefined;
}

/** Every `name{label="value"}` equality matcher in a PromQL expression, for mps_ metrics. */
function equalityMatchers(expr: string): { metric: string; label: string; value: string }[] {
  const found: { metric: string; label: string; value: string }[] = [];
  for (const sel of expr.matchAll(/(mps_[a-z_]+)\{([^}]*)\}/g)) {
    for (const m of sel[2]!.matchAll(/(\w+)\s*(=~|!=|!~|=)\s*"([^"]*)"/g)) {
      if (m[2] === '=') found.push({ metric: sel[1]!, label: m[1]!, value: m[3]! });
    }
  }
  return found;
}

/** Labels Prometheus adds to every sample it scrapes, which no process exports itself. */
const TARGET_LABELS = new Set(['instance', 'job']);

/** Every label name used in a selector of an mps_ metric, but the target labels. */
function labelNamesUsed(expr: string): { metric: string; label: string }[] {
  const found: { metric: string; label: string }[] = [];
  for (const sel of expr.matchAll(/(mps_[a-z_]+)\{([^}]*)\}/g)) {
    for (const m of sel[2]!.matchAll(/(\w+)\s*(?:=~|!=|!~|=)/g)) found.push({ metric: sel[1]!, label: m[1]! });
  }
  for (const by of expr.matchAll(/by \(([^)]*)\)\s*\((?:rate|increase)?\(?(mps_[a-z_]+)/g)) {
    for (const label of by[1]!.split(',').map((s) => s.trim())) if (label !== 'le') found.push({ metric: by[2]!, label });
  }
  return found.filter(({ label }) => !TARGET_LABELS.has(label));
}

const mpsIdentifiers = (expr: string) => [...new Set(expr.match(/mps_[a-z_]+/g) ?? [])];

/** A local webhook receiver answering 200. */
async function receiver(): Promise<{ url: string; bodies: unknown[]; close(): Promise<void> }> {
  const bodies: unknown[] = [];
  const server: Server = createServer((req, res) => {
    let raw = '';
    req.on('data', (c: Buffer) => (raw += c.toString()));
    req.on('end', () => {
      bodies.push(JSON.parse(raw));
      res.writeHead(200).end('ok');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`,
    bodies,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

describe('operations: metrics, alert rules and dashboard', function () {
  this.timeout(40_000);

  describe('after a charge flow', () => {
    let sys: TestSystem;
    let hook: Awaited<ReturnType<typeof receiver>>;
    let text: string;
    let samples: Sample[];
    let paymentPartition: number;
    let operationId: string;
    let merchantId: string;
    let paymentTxNo: string;
    let relayError: Error | undefined;
    let probes: RunningProbes;
    let scheduler: RunningScheduler;
    let schedulerSys: TestSystem;
    let database: Awaited<ReturnType<typeof freshDatabase>>;

    before(async () => {
      // A database of its own: a batch takes every queued operation of its partition, and other
      // files leave some behind (rows inserted by SQL), which would count here too.
      database = await freshDatabase('mps_ops');
      // LARGE_TX_ALERT 100.00 so the 150.00 payment raises a large_payment risk alert. The probes
      // run here, as in a worker process. A ticking scheduler runs on a system of its own (queue
      // prefix without workers): its reconcile jobs would pick up the open operations.
      sys = await startSystem({ LARGE_TX_ALERT: 10_000 }, { databaseUrl: database.url });
      probes = startProbes(sys.deps);
      schedulerSys = await startSystem({ RECONCILE_CRON: '* * * * * *', RELAY_CRON: '0 0 1 1 *' }, { workers: false, databaseUrl: database.url });
      scheduler = startScheduler(schedulerSys.deps);
      hook = await receiver();
      const { merchant, key: merchantKey } = await createMerchant(sys);
      const ep = await sys.http.post('/v1/merchant/webhook-endpoints', { url: hook.url, events: ['payment.succeeded'] }, { key: merchantKey });
      expect(ep.status, ep.text).to.equal(201);
      const member = await createMember(sys);
      const card = await issueCard(sys, { type: 'prepaid', ownerMemberId: member.id });
      await rechargeOk(sys, card.id, '500.00');

      const qr = await issueQr(sys, card.id);
      expect((await sys.http.post('/v1/qr/validate', { qr }, { key: merchantKey })).body.valid).to.equal(true);
      expect((await sys.http.post('/v1/qr/validate', { qr: 'mpsq_not-a-token' }, { key: merchantKey })).body.valid).to.equal(false);
      const paid = expectSucceeded(await charge(sys, merchantKey, { qr, amount: '150.00' }), 'payment');
      operationId = paid.id;
      expect((await sys.http.get(`/v1/operations/${paid.id}`, { key: merchantKey })).status).to.equal(200);
      expectFailed(await charge(sys, merchantKey, { qr: await issueQr(sys, card.id), amount: '900.00' }), 'INSUFFICIENT_BALANCE');
      expectSucceeded(await refund(sys, merchantKey, { original_tx_no: paid.result!.tx_no as string, amount: '10.00' }), 'refund');
      paymentPartition = (await sys.deps.db('operations').where({ id: paid.id }).first('partition')).partition as number;

      // The scheduler is not running in tests: relay the outbox and run detection by hand.
      relayError = await runRelayOutbox(sys.deps).then(
        () => undefined,
        (err: Error) => err,
      );
      merchantId = merchant.id;
      paymentTxNo = paid.result!.tx_no as string;
      const detected = await runDetectAnomalies(sys.deps);
      expect(detected.raised).to.be.at.least(1);
      for (let tries = 0; tries < 40 && !scheduler.lastTicks().reconcile; tries++) await sleep(100);

      await scrape();
    });
    // What Prometheus gathers: this system's /metrics and the scheduler's gauge from its target.
    const scrape = async () => {
      const res = await sys.http.get('/metrics');
      expect(res.status).to.equal(200);
      expect(res.headers.get('content-type')).to.match(/^text\/plain/);
      text = `${res.text}\n${await schedulerSys.deps.metrics.registry.getSingleMetricAsString('mps_scheduler_last_tick_timestamp_seconds')}\n`;
      samples = parseSamples(text);
    };
    const myDelivery = () =>
      sys.deps.db('webhook_deliveries as d').join('webhook_endpoints as e', 'e.id', 'd.endpoint_id').where('e.merchant_id', merchantId).first('d.id', 'd.status', 'd.attempts');
    after(async () => {
      probes?.stop();
      await scheduler?.stop();
      await schedulerSys?.deps.queues.maintenance.obliterate({ force: true });
      await schedulerSys?.stop();
      await hook?.close();
      await sys?.stop();
      await database?.drop();
    });

    it('counts HTTP requests by route pattern, never by concrete path', () => {
      expect(total(samples, 'mps_http_requests_total', { method: 'POST', route: '/v1/payments', status: '200' })).to.equal(2);
      expect(total(samples, 'mps_http_requests_total', { method: 'POST', route: '/v1/qr/validate', status: '200' })).to.equal(2);
      expect(total(samples, 'mps_http_requests_total', { method: 'GET', route: '/v1/operations/:id', status: '200' })).to.equal(1);
      expect(total(samples, 'mps_http_requests_total', { method: 'POST', route: '/v1/cards/:id/qr', status: '201' })).to.equal(2);
      const routes = matching(samples, 'mps_http_requests_total').map((s) => s.labels.route!);
      expect(routes.filter((r) => /op_|[0-9a-f]{8}-[0-9a-f]{4}/.test(r)), 'ids in route labels').to.deep.equal([]);
      expect(total(samples, 'mps_http_request_duration_seconds_count', { method: 'POST', route: '/v1/payments' })).to.equal(2);
    });

    it('counts a request refused before routing (401) under the route it was meant for; an unknown path stays "unmatched"', async () => {
      await sys.http.get(`/v1/cards/${randomUUID()}`, { key: 'mps_admin_not-a-key-of-ours-000000000000' });
      await sys.http.post('/v1/payments', { qr: 'x', amount: 1 }, { key: 'mps_mk_not-a-key-of-ours-0000000000000' });
      await sys.http.get('/v1/no/such/route', { key: 'mps_admin_not-a-key-of-ours-000000000000' });
      await scrape();
      expect(total(samples, 'mps_http_requests_total', { method: 'GET', route: '/v1/cards/:id', status: '401' })).to.equal(1);
      expect(total(samples, 'mps_http_requests_total', { method: 'POST', route: '/v1/payments', status: '401' })).to.equal(1);
      expect(total(samples, 'mps_http_requests_total', { method: 'GET', route: 'unmatched', status: '401' })).to.equal(1);
    });

    it('counts operations by type, status and error code', () => {
      expect(total(samples, 'mps_operations_total', { type: 'payment', status: 'succeeded', code: '' })).to.equal(1);
      expect(total(samples, 'mps_operations_total', { type: 'payment', status: 'failed', code: 'INSUFFICIENT_BALANCE' })).to.equal(1);
      expect(total(samples, 'mps_operations_total', { type: 'refund', status: 'succeeded' })).to.equal(1);
      expect(total(samples, 'mps_operations_total', { type: 'recharge', status: 'succeeded' })).to.equal(1);
    });

    it('exports the accept-to-done latency histogram per operation type', () => {
      expect(families(text).get('mps_operation_accept_to_done_seconds')).to.equal('histogram');
      expect(total(samples, 'mps_operation_accept_to_done_seconds_count', { type: 'payment' })).to.equal(2);
      expect(total(samples, 'mps_operation_accept_to_done_seconds_bucket', { type: 'payment', le: '+Inf' })).to.equal(2);
      expect(total(samples, 'mps_operation_accept_to_done_seconds_bucket', { type: 'payment', le: '30' })).to.equal(2);
      expect(total(samples, 'mps_operation_accept_to_done_seconds_sum', { type: 'payment' })).to.be.greaterThan(0);
    });

    it('reads queue depths by queue and state at scrape time', () => {
      // Finished operation jobs are removed at once (the operation row is the record), so the payment's partition reads 0 completed.
      const partition = matching(samples, 'mps_queue_jobs').filter((s) => s.labels.queue === `card-ops-{${paymentPartition}}`);
      expect(partition.map((s) => s.labels.state)).to.include.members(['waiting', 'active', 'completed']);
      expect(total(samples, 'mps_queue_jobs', { queue: `card-ops-{${paymentPartition}}`, state: 'completed' })).to.equal(0);
      const queues = new Set(matching(samples, 'mps_queue_jobs').map((s) => s.labels.queue));
      expect(queues).to.include.members(['card-ops-{0}', 'card-ops-{15}', 'maintenance-{m}', 'webhooks-{w}']);
      const states = new Set(matching(samples, 'mps_queue_jobs').map((s) => s.labels.state));
      expect([...states]).to.include.members(['waiting', 'active', 'delayed', 'failed', 'completed', 'prioritized']);
    });

    it('counts QR events, risk alerts and jobs', () => {
      expect(total(samples, 'mps_qr_events_total', { event: 'issued' })).to.equal(2);
      expect(total(samples, 'mps_qr_events_total', { event: 'invalid' })).to.equal(1);
      expect(total(samples, 'mps_qr_events_total', { event: 'used' })).to.equal(1);
      expect(total(samples, 'mps_risk_alerts_total', { rule: 'large_payment' })).to.be.at.least(1);
      expect(total(samples, 'mps_jobs_total', { queue: 'card-ops', outcome: 'completed' })).to.equal(4);
      expect(families(text).get('mps_webhook_deliveries_total')).to.equal('counter');
    });

    it('the outbox relay enqueues the payment event and the webhook queue delivers it', async () => {
      expect(relayError?.message, 'runRelayOutbox threw').to.equal(undefined);
      const deadline = Date.now() + 5000;
      while (!hook.bodies.some((b) => (b as { data?: { tx_no?: string } }).data?.tx_no === paymentTxNo) && Date.now() < deadline) await sleep(50);
      expect((await myDelivery())?.status).to.equal('delivered');
    });

    it('counts webhook deliveries by outcome', async () => {
      const delivery = await myDelivery();
      expect(delivery, 'the relay created a delivery for the endpoint').to.not.equal(undefined);
      // Delivered through the queue in the test above, or (when that is broken) by running the job here.
      if (delivery.status === 'pending') expect(await runDeliverWebhook(sys.deps, { deliveryId: delivery.id as string })).to.deep.equal({ status: 'delivered' });
      await scrape();
      expect(total(samples, 'mps_webhook_deliveries_total', { outcome: 'delivered' })).to.be.at.least(1);
      expect(hook.bodies.some((b) => (b as { data?: { tx_no?: string } }).data?.tx_no === paymentTxNo)).to.equal(true);
    });

    it('does not put the operation id or QR tokens in any label', () => {
      expect(text).to.not.contain(operationId);
      expect(text).to.not.contain('mpsq_');
    });

    describe('ops/prometheus/alerts.yml', () => {
      const doc = parseYaml(readFileSync(new URL('../../ops/prometheus/alerts.yml', import.meta.url), 'utf8')) as {
        groups: { name: string; rules: { alert: string; expr: string; for?: string; labels?: { severity?: string }; annotations?: { summary?: string } }[] }[];
      };
      const rules = doc.groups.flatMap((g) => g.rules);

      it('is a rule file of named alerts, each with an expression, a severity and a summary', () => {
        expect(rules.length).to.be.at.least(8);
        for (const r of rules) {
          expect(r.alert, JSON.stringify(r)).to.match(/^Mps[A-Za-z0-9]+$/);
          expect(r.expr, r.alert).to.be.a('string').and.not.equal('');
          expect(r.labels?.severity, r.alert).to.be.oneOf(['critical', 'warning', 'info']);
          expect(r.annotations?.summary, r.alert).to.be.a('string');
        }
        expect(new Set(rules.map((r) => r.alert)).size, 'alert names are unique').to.equal(rules.length);
      });

      it('uses only metrics that /metrics exports (HELP and TYPE), with labels they carry', () => {
        const exported = families(text);
        const used = rules.flatMap((r) => mpsIdentifiers(r.expr).map((id) => ({ alert: r.alert, id })));
        expect(used.length).to.be.at.least(8);
        const missing = used.filter((u) => !familyOf(u.id, exported)).map((u) => `${u.alert}: ${u.id}`);
        expect(missing, 'metrics used by alerts but not exported').to.deep.equal([]);
        const badLabels = rules.flatMap((r) =>
          labelNamesUsed(r.expr)
            .filter(({ metric, label }) => !matching(samples, metric).some((s) => label in s.labels))
            .map(({ metric, label }) => `${r.alert}: ${metric} has no label ${label}`),
        );
        expect(badLabels).to.deep.equal([]);
        const badValues = rules.flatMap((r) =>
          equalityMatchers(r.expr)
            .filter(({ metric, label, value }) => !matching(samples, metric, { [label]: value }).length)
            .map(({ metric, label, value }) => `${r.alert}: no ${metric}{${label}="${value}"} sample`),
        );
        expect(badValues).to.deep.equal([]);
      });
    });

    describe('ops/grafana/mps-dashboard.json', () => {
      const exprs: string[] = [];
      const walk = (node: unknown): void => {
        if (Array.isArray(node)) node.forEach(walk);
        else if (node && typeof node === 'object') {
          for (const [k, v] of Object.entries(node)) {
            if (k === 'expr' && typeof v === 'string') exprs.push(v);
            else walk(v);
          }
        }
      };

      it('parses and queries only exported mps_ metrics', () => {
        const dashboard = JSON.parse(readFileSync(new URL('../../ops/grafana/mps-dashboard.json', import.meta.url), 'utf8')) as { title?: string; panels?: unknown[] };
        expect(dashboard.title).to.be.a('string');
        walk(dashboard);
        expect(exprs.length).to.be.at.least(5);
        const exported = families(text);
        const ids = [...new Set(exprs.flatMap(mpsIdentifiers))];
        expect(ids).to.include.members(['mps_operations_total', 'mps_queue_jobs', 'mps_http_requests_total']);
        expect(ids.filter((id) => !familyOf(id, exported)), 'dashboard metrics not exported').to.deep.equal([]);
        const badLabels = exprs.flatMap((e) => labelNamesUsed(e).filter(({ metric, label }) => !matching(samples, metric).some((s) => label in s.labels)));
        expect(badLabels).to.deep.equal([]);
        const badValues = exprs.flatMap((e) => equalityMatchers(e).filter(({ metric, label, value }) => !matching(samples, metric, { [label]: value }).length));
        expect(badValues).to.deep.equal([]);
      });
    });
  });

  describe('queue depth and METRICS_TOKEN', () => {
    const token = 'metrics-token-0123456789abcdef';
    let sys: TestSystem;
    before(async () => {
      sys = await startSystem({ METRICS_TOKEN: token, CARD_PARTITIONS: 2 }, { workers: false });
    });
    after(async () => {
      await sys.stop();
    });

    it('needs the bearer token: 401 without it or with a wrong one, 200 with it', async () => {
      const none = await sys.http.get('/metrics');
      expect(none.status).to.equal(401);
      expect(none.body.error.code).to.equal('UNAUTHENTICATED');
      expect(none.text).to.not.contain('mps_http_requests_total');
      for (const authorization of [`Bearer ${token}x`, `Bearer ${token.slice(0, -1)}`, `Basic ${token}`, token, 'Bearer ']) {
        const res = await sys.http.get('/metrics', { headers: { authorization } });
        expect(res.status, authorization).to.equal(401);
        expect(res.text).to.not.contain('# HELP');
      }
      const ok = await sys.http.get('/metrics', { headers: { authorization: `Bearer ${token}` } });
      expect(ok.status).to.equal(200);
      expect(ok.text).to.contain('# HELP mps_http_requests_total');
      // Liveness stays open.
      expect((await sys.http.get('/health')).status).to.equal(200);
    });

    it('reports waiting jobs as they are at each scrape', async () => {
      const scrape = async () => parseSamples((await sys.http.get('/metrics', { headers: { authorization: `Bearer ${token}` } })).text);
      const queue = sys.deps.queues.partitions[1]!;
      expect(total(await scrape(), 'mps_queue_jobs', { queue: 'card-ops-{1}', state: 'waiting' })).to.equal(0);
      await queue.add('payment', { operationId: 'op_metrics_a' }, { jobId: 'op_metrics_a' });
      await queue.add('payment', { operationId: 'op_metrics_b' }, { jobId: 'op_metrics_b' });
      await queue.add('payment', { operationId: 'op_metrics_c' }, { jobId: 'op_metrics_c', delay: 60_000 });
      let now = await scrape();
      expect(total(now, 'mps_queue_jobs', { queue: 'card-ops-{1}', state: 'waiting' })).to.equal(2);
      expect(total(now, 'mps_queue_jobs', { queue: 'card-ops-{1}', state: 'delayed' })).to.equal(1);
      expect(total(now, 'mps_queue_jobs', { queue: 'card-ops-{0}', state: 'waiting' })).to.equal(0);
      await queue.obliterate({ force: true });
      now = await scrape();
      expect(total(now, 'mps_queue_jobs', { queue: 'card-ops-{1}', state: 'waiting' })).to.equal(0);
    });
  });

  describe('in the Procfile deployment (web and worker are separate processes)', () => {
    let sys: TestSystem;
    let worker: ChildProcess | undefined;
    before(async () => {
      sys = await startSystem({}, { workers: false });
    });
    after(async () => {
      if (worker && worker.exitCode === null) {
        const exited = new Promise((resolve) => worker!.once('exit', resolve));
        worker.kill('SIGTERM');
        await exited;
      }
      await sys.stop();
    });

    // Operations are counted where they finish, in the worker process, which serves its own
    // /metrics on WORKER_METRICS_PORT (a scrape target of alerts.yml). This checks that they reach it.
    it('operation outcomes counted by the worker reach the /metrics that Prometheus scrapes', async () => {
      const metricsPort = await freePort();
      worker = spawn(process.execPath, ['--import', 'tsx', 'workers/main.ts'], {
        env: { ...process.env, DATABASE_URL: testEnv.databaseUrl, REDIS_URL: testEnv.redisUrl, QUEUE_PREFIX: sys.config.QUEUE_PREFIX, LOG_LEVEL: 'silent', ENCRYPTION_KEY: sys.config.ENCRYPTION_KEY, WORKER_METRICS_PORT: String(metricsPort) },
        stdio: ['ignore', 'ignore', 'pipe'],
      });
      const { key: merchantKey } = await createMerchant(sys);
      const member = await createMember(sys);
      const qr = await issueQr(sys, member.cards[0]!.id);
      expectSucceeded(await charge(sys, merchantKey, { qr, amount: '12.00', payment_method: 'cash' }, { wait: 20 }), 'payment through the worker process');
      // The worker starts listening just after it starts working: allow it a moment.
      let text = '';
      for (let tries = 0; tries < 50 && !text; tries++) text = await fetch(`http://127.0.0.1:${metricsPort}/metrics`).then((r) => r.text(), () => sleep(100).then(() => ''));
      const samples = parseSamples(text);
      expect(
        total(samples, 'mps_operations_total', { type: 'payment', status: 'succeeded' }),
        'mps_operations_total on the worker /metrics after a payment the worker process completed',
      ).to.equal(1);
    });
  });
});
