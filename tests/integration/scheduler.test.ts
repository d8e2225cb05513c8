import { randomBytes, randomUUID } from 'node:crypto';
import { expect } from 'chai';
import { validate as validCron, type TaskContext } from 'node-cron';
import { createMember, createMerchant } from '../helpers/fixtures.js';
import { insertTransaction, sleep } from '../helpers/sql-rows.js';
import { startSystem, type TestSystem } from '../helpers/system.js';
import { schedulerTicks, startScheduler } from '../../workers/scheduler.js';
import { maintenanceJobOptions } from '../../jobs/queues.js';
import { MAINTENANCE_JOBS } from '../../jobs/names.js';
import { previousLocalDay } from '../../db/queries/settlements.js';

const ctxAt = (iso: string): TaskContext => ({ date: new Date(iso), dateLocalIso: iso, triggeredAt: new Date() });

/**
 * The scheduler (DESIGN.md §1 "scheduler"): node-cron ticks that only enqueue maintenance jobs with
 * deterministic ids, so two scheduler processes running at once enqueue one job per period.
 */
describe('integration: scheduler', function () {
  this.timeout(60_000);
  let a: TestSystem;
  let b: TestSystem;

  before(async () => {
    // Two "scheduler processes": separate deps (connections), one shared queue prefix.
    const prefix = `sched${randomBytes(4).toString('hex')}`;
    a = await startSystem({ QUEUE_PREFIX: prefix, RECONCILE_CRON: '* * * * * *' }, { workers: false });
    b = await startSystem({ QUEUE_PREFIX: prefix, RECONCILE_CRON: '* * * * * *' }, { workers: false });
  });
  after(async () => {
    await a.stop();
    await b.stop();
  });
  afterEach(async () => {
    await a.deps.queues.maintenance.obliterate({ force: true });
  });

  it('has one tick per maintenance job, each with a valid cron; settlement runs in SETTLEMENT_TZ', () => {
    const ticks = schedulerTicks(a.deps);
    expect(ticks.map((t) => t.job).sort()).to.deep.equal([...MAINTENANCE_JOBS].sort());
    for (const t of ticks) expect(validCron(t.cron), `${t.job}: ${t.cron}`).to.equal(true);
    expect(ticks.find((t) => t.job === 'settlement')!.timezone).to.equal(a.config.SETTLEMENT_TZ);
  });

  it('plans deterministic ids: the same tick gives the same id in either scheduler; another tick another id', async () => {
    const ticksA = schedulerTicks(a.deps);
    const ticksB = schedulerTicks(b.deps);
    for (const tick of ticksA) {
      const other = ticksB.find((t) => t.job === tick.job)!;
      const p1 = await tick.plan(ctxAt('2026-11-22T00:10:00.000Z'));
      const p2 = await tick.plan(ctxAt('2026-11-22T00:10:00.000Z'));
      const p3 = await other.plan(ctxAt('2026-11-22T00:10:00.000Z'));
      // Two processes see the same tick a few ms apart: still the same id.
      const jitter = await other.plan(ctxAt('2026-11-22T00:10:00.730Z'));
      expect(p2, tick.job).to.deep.equal(p1);
      expect(p3, tick.job).to.deep.equal(p1);
      expect(jitter, tick.job).to.deep.equal(p1);
      expect(p1.id, tick.job).to.contain(tick.job);
      const later = await tick.plan(ctxAt('2026-11-22T00:11:00.000Z'));
      if (tick.job === 'settlement') {
        // The settlement id is the day settled (from Postgres time), not the tick time.
        const day = await previousLocalDay(a.deps.db, a.config.SETTLEMENT_TZ);
        expect(p1.payload).to.deep.equal({ day });
        expect(p1.id).to.contain(day);
        expect(later).to.deep.equal(p1);
      } else {
        expect(p1.payload).to.deep.equal({ at: '2026-11-22T00:10:00.000Z' });
        expect(later.id, tick.job).to.not.equal(p1.id);
      }
    }
  });

  it('two schedulers enqueueing the same ticks make one job per tick in the maintenance queue', async () => {
    const ticksA = schedulerTicks(a.deps);
    const ticksB = schedulerTicks(b.deps);
    const ctx = ctxAt('2026-11-22T00:10:00.000Z');
    const planned: { job: string; id: string; payload: unknown }[] = [];
    for (const tick of ticksA) {
      const other = ticksB.find((t) => t.job === tick.job)!;
      const [pa, pb] = await Promise.all([tick.plan(ctx), other.plan(ctx)]);
      // Exactly what startScheduler does on each tick, from both processes at once.
      await Promise.all([a.deps.queues.maintenance.add(tick.job, pa.payload, maintenanceJobOptions(pa.id)), b.deps.queues.maintenance.add(other.job, pb.payload, maintenanceJobOptions(pb.id))]);
      planned.push({ job: tick.job, id: pa.id, payload: pa.payload });
    }
    const counts = await a.deps.queues.maintenance.getJobCounts('waiting', 'delayed', 'prioritized', 'active', 'completed', 'failed');
    expect(Object.values(counts).reduce((x, y) => x + y, 0)).to.equal(planned.length);
    for (const p of planned) {
      const job = await b.deps.queues.maintenance.getJob(p.id);
      expect(job, p.id).to.not.equal(undefined);
      expect(job!.name).to.equal(p.job);
      expect(job!.data).to.deep.equal(p.payload);
    }
  });

  it('two running schedulers (node-cron, every second) enqueue each tick once', async () => {
    const started = Date.now();
    const schedulers = [startScheduler(a.deps), startScheduler(b.deps)];
    await sleep(3_300);
    await Promise.all(schedulers.map((s) => s.stop()));
    const seconds = Math.ceil((Date.now() - started) / 1000);
    const jobs = (await a.deps.queues.maintenance.getJobs(['waiting', 'delayed', 'prioritized', 'active', 'completed', 'failed'])).filter((j) => j.name === 'reconcile');
    // One job per second that ticked, not two: at least 2 ticks in 3.3 s, at most one per second.
    expect(jobs.length).to.be.within(2, seconds + 1);
    const ats = jobs.map((j) => j.data.at as string);
    expect(new Set(ats).size).to.equal(jobs.length);
    for (const j of jobs) expect(Date.parse(j.data.at as string) % 1000).to.equal(0);
  });

  it('a maintenance job on the queue is run by a worker with its handler (settlement of the payload day)', async () => {
    const w = await startSystem({}, { workers: true });
    try {
      const { merchant } = await createMerchant(w);
      const member = await createMember(w);
      await insertTransaction(w.deps.db, { type: 'payment', merchantId: merchant.id, cardId: member.cards[0]!.id, finalMinor: 1_234, createdAt: '2026-11-18T04:00:00.000Z' });
      const jobId = `settlement-test-${randomUUID()}`;
      await w.deps.queues.maintenance.add('settlement', { day: '2026-11-18', merchantId: merchant.id }, maintenanceJobOptions(jobId));
      let state = '';
      for (let i = 0; i < 100 && state !== 'completed' && state !== 'failed'; i++) {
        await sleep(100);
        state = await w.deps.queues.maintenance.getJobState(jobId);
      }
      const job = await w.deps.queues.maintenance.getJob(jobId);
      expect(state, job?.failedReason).to.equal('completed');
      expect(job!.returnvalue).to.deep.equal({ day: '2026-11-18', created: 1 });
      const rows = await w.deps.db('settlements').where({ merchant_id: merchant.id });
      expect(rows).to.have.length(1);
      expect(rows[0]).to.include({ period_date: '2026-11-18', gross_minor: 1_234 });
    } finally {
      await w.stop();
    }
  });
});
