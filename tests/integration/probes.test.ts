import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { expect } from 'chai';
import { createMetrics } from '../../config/metrics.js';
import { createKnex } from '../../db/knex.js';
import { freePort } from '../../dev/stack.js';
import { startProbes } from '../../workers/probes.js';
import { createMember, issueCard } from '../helpers/fixtures.js';
import { recharge, sleep } from '../helpers/money.js';
import { testEnv } from '../helpers/env.js';
import { startSystem, type TestSystem } from '../helpers/system.js';

/** The value of an unlabelled or exactly-labelled sample in Prometheus text, or undefined. */
const sample = (text: string, series: string) => {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
};

async function until<T>(what: string, fn: () => Promise<T | undefined>, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await fn().catch(() => undefined);
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

describe('integration: health probes and the scheduler process', function () {
  this.timeout(40_000);
  let sys: TestSystem;

  before(async () => {
    sys = await startSystem({}, { workers: false });
  });
  after(async () => {
    await sys.deps.queues.maintenance.obliterate({ force: true });
    await sys.stop();
  });

  it('exports the age of the oldest open operation (an operation nobody works on) and Postgres as up', async () => {
    const card = await issueCard(sys, { type: 'prepaid', ownerMemberId: (await createMember(sys)).id });
    const accepted = await recharge(sys, card.id, { amount: '5.00' }, { wait: false });
    expect(accepted.status, accepted.text).to.equal(202);
    await sys.deps.db('operations').where({ id: accepted.body.id }).update({ created_at: sys.deps.db.raw("now() - interval '300 seconds'") });
    const metrics = createMetrics();
    const probes = startProbes({ ...sys.deps, metrics }, 100);
    try {
      const text = await until('a probe', async () => {
        const t = await metrics.registry.metrics();
        return sample(t, 'mps_postgres_up') === 1 ? t : undefined;
      });
      // Other files may leave older open operations in the shared database: the gauge is the oldest of all.
      const { rows } = await sys.deps.db.raw<{ rows: { age: number }[] }>(`SELECT extract(epoch FROM now() - min(created_at))::float8 AS age FROM operations WHERE status IN ('queued', 'processing')`);
      const age = sample(text, 'mps_operation_oldest_open_age_seconds')!;
      expect(age).to.be.at.least(300);
      expect(age).to.be.closeTo(rows[0]!.age, 10);
    } finally {
      probes.stop();
      // Closed, so that no other test finds it open.
      await sys.deps.db('operations').where({ id: accepted.body.id }).update({ status: 'failed', error_code: 'INTERNAL_ERROR', completed_at: sys.deps.db.raw('now()') });
    }
  });

  it('exports Postgres as down when the probe cannot reach it', async () => {
    const unreachable = createKnex(`postgres://mps:x@127.0.0.1:${await freePort()}/mps`, 1, () => undefined);
    const metrics = createMetrics();
    const probes = startProbes({ ...sys.deps, metrics, db: unreachable }, 100);
    try {
      await until('a failed probe', async () => (sample(await metrics.registry.metrics(), 'mps_postgres_up') === 0 ? true : undefined));
    } finally {
      probes.stop();
      await unreachable.destroy();
    }
  });

  it('a web process exports Redis memory but no probe gauges it does not sample', async () => {
    const text = (await sys.http.get('/metrics')).text;
    expect(sample(text, 'mps_redis_memory_used_bytes')).to.be.greaterThan(100_000);
    expect(sample(text, 'mps_redis_maxmemory_bytes')).to.be.a('number');
    expect(text).to.not.contain('mps_postgres_up');
  });

  describe('the scheduler process (workers/scheduler.ts)', () => {
    let scheduler: ChildProcess | undefined;
    after(async () => {
      if (scheduler && scheduler.exitCode === null) {
        const exited = new Promise((resolve) => scheduler!.once('exit', resolve));
        scheduler.kill('SIGTERM');
        await exited;
      }
    });

    it('serves /health with its last tick per cron and /metrics with the same as a gauge; SIGTERM stops it', async () => {
      const port = await freePort();
      scheduler = spawn(process.execPath, ['--import', 'tsx', 'workers/scheduler.ts'], {
        env: {
          ...process.env,
          DATABASE_URL: testEnv.databaseUrl,
          REDIS_URL: testEnv.redisUrl,
          QUEUE_PREFIX: sys.config.QUEUE_PREFIX,
          LOG_LEVEL: 'silent',
          SCHEDULER_METRICS_PORT: String(port),
          RECONCILE_CRON: '* * * * * *',
          // The others would not tick within the test; keep them far away.
          RELAY_CRON: '0 0 1 1 *',
          ENCRYPTION_KEY: randomBytes(32).toString('hex'),
        },
        stdio: ['ignore', 'ignore', 'pipe'],
      });
      const base = `http://127.0.0.1:${port}`;
      const health = await until('a reconcile tick on /health', async () => {
        const body = (await (await fetch(`${base}/health`)).json()) as { status: string; last_ticks: Record<string, string> };
        return body.last_ticks.reconcile ? body : undefined;
      });
      expect(health.status).to.equal('ok');
      expect(Date.now() - Date.parse(health.last_ticks.reconcile!)).to.be.below(5000);
      expect(Object.keys(health.last_ticks)).to.deep.equal(['reconcile']);

      const text = await (await fetch(`${base}/metrics`)).text();
      const lastTick = sample(text, 'mps_scheduler_last_tick_timestamp_seconds{tick="reconcile"}');
      expect(lastTick! * 1000).to.be.within(Date.now() - 5000, Date.now() + 1000);
      // The tick really enqueued its job.
      expect(await sys.deps.queues.maintenance.getJobCountByTypes('waiting', 'prioritized')).to.be.at.least(1);

      const exited = new Promise<number | null>((resolve) => scheduler!.once('exit', resolve));
      scheduler.kill('SIGTERM');
      expect(await exited).to.equal(0);
    });
  });
});
