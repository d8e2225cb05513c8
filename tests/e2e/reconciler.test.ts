import { expect } from 'chai';
import { runCardOperation } from '../../jobs/index.js';
import { runReconcile } from '../../jobs/reconcile.js';
import { startWorkers, type RunningWorkers } from '../../workers/main.js';
import { createMember, createMerchant, issueCard } from '../helpers/fixtures.js';
import { charge, expectFailed, expectLedgersMatch, expectSucceeded, issueQr, recharge, sleep, type OperationJson } from '../helpers/money.js';
import { startSystem, type TestSystem } from '../helpers/system.js';

/** Waits until every operation is terminal in Postgres; returns the rows. */
async function allTerminal(sys: TestSystem, ids: string[], timeoutMs = 15_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const rows = await sys.deps.db('operations').whereIn('id', ids);
    if (rows.length === ids.length && rows.every((r) => r.status === 'succeeded' || r.status === 'failed')) return rows;
    if (Date.now() > deadline) throw new Error(`still open: ${JSON.stringify(rows.filter((r) => !['succeeded', 'failed'].includes(r.status)).map((r) => [r.id, r.status]))}`);
    await sleep(50);
  }
}

/**
 * Stale open operations other than `mine`: left behind by other test files (accepted without
 * workers). The reconciler scans the whole table, so it re-enqueues those too; counts are relative.
 */
async function staleOthers(sys: TestSystem, mine: string[]): Promise<number> {
  const row = await sys.deps.db('operations')
    .whereIn('status', ['queued', 'processing'])
    .andWhere('created_at', '<', sys.deps.db.raw(`now() - make_interval(secs => ?)`, [sys.config.RECONCILE_AFTER_S]))
    .whereNotIn('id', mine)
    .count<{ n: string }>({ n: '*' })
    .first();
  return Number(row?.n ?? 0);
}

/** Every succeeded operation has exactly one transaction, every failed one none. */
async function exactlyOnce(sys: TestSystem, rows: { id: string; status: string }[]) {
  for (const row of rows) {
    const txs = await sys.deps.db('transactions').where({ operation_id: row.id });
    expect(txs, `${row.id} ${row.status}`).to.have.length(row.status === 'succeeded' ? 1 : 0);
  }
}

describe('e2e: reconciler and lost jobs', function () {
  this.timeout(60_000);
  let sys: TestSystem;
  let workers: RunningWorkers | undefined;

  beforeEach(async () => {
    sys = await startSystem({ RECONCILE_AFTER_S: 1 }, { workers: false });
  });
  afterEach(async () => {
    await workers?.close();
    workers = undefined;
    await sys.stop();
  });

  async function setup() {
    const m = await createMerchant(sys);
    const member = await createMember(sys);
    const card = await issueCard(sys, { type: 'prepaid', ownerMemberId: member.id });
    const other = await issueCard(sys, { type: 'corporate', ownerMemberId: member.id, fixedDiscount: '0.800' });
    return { merchantKey: m.key, card, other };
  }

  /** Accepts, without workers: recharge 500, charge 100, recharge 50 on one card; recharge 20 on another. */
  async function acceptSome(merchantKey: string, cardId: string, otherId: string): Promise<OperationJson[]> {
    const accepted: OperationJson[] = [];
    const r1 = await recharge(sys, cardId, { amount: '500.00' }, { wait: false });
    accepted.push(r1.body);
    const qr = await issueQr(sys, cardId);
    accepted.push((await charge(sys, merchantKey, { qr, amount: '100.00' }, { wait: false })).body);
    accepted.push((await recharge(sys, cardId, { amount: '50.00' }, { wait: false })).body);
    accepted.push((await recharge(sys, otherId, { amount: '20.00' }, { wait: false })).body);
    for (const op of accepted) expect(op.status).to.equal('queued');
    return accepted;
  }

  it('Redis loses every job (FLUSHALL): the reconciler re-enqueues them, all complete, none twice', async () => {
    const { merchantKey, card, other } = await setup();
    const accepted = await acceptSome(merchantKey, card.id, other.id);
    const ids = accepted.map((o) => o.id);
    // The API answered 202 and enqueued; now the jobs are gone.
    await sys.deps.redis.flushall();
    for (const op of accepted) {
      const row = await sys.deps.db('operations').where({ id: op.id }).first();
      expect(await sys.deps.queues.partitions[row.partition]!.getJob(op.id)).to.equal(undefined);
    }

    workers = await startWorkers(sys.deps);
    await sleep(300);
    // Nothing runs them: they are only in Postgres.
    expect((await sys.deps.db('operations').whereIn('id', ids)).map((r) => r.status)).to.deep.equal(ids.map(() => 'queued'));

    await sleep(1100 - 300);
    const others = await staleOthers(sys, ids);
    const first = await runReconcile(sys.deps);
    expect(first.reenqueued).to.equal(others + 4);
    const rows = await allTerminal(sys, ids);
    // A second pass once they are done leaves them alone.
    await runReconcile(sys.deps);
    await sleep(200);

    expect(rows.every((r) => r.status === 'succeeded'), JSON.stringify(rows.map((r) => [r.type, r.status, r.error_code]))).to.equal(true);
    await exactlyOnce(sys, rows);
    // Re-enqueued in order of acceptance: recharge 500, charge 100, recharge 50.
    await expectLedgersMatch(sys, card.id, { balance: 45_000, points: 100 });
    await expectLedgersMatch(sys, other.id, { balance: 2_000, points: 0 });

    // The operations read as done through the API too.
    const read = await sys.http.get<OperationJson>(`/v1/operations/${ids[1]}`, { key: merchantKey });
    expectSucceeded(read);
    expect(read.body.result).to.include({ final_amount: '100.00' });
  });

  it('the reconciler does not double jobs that are still in Redis; a job run twice changes nothing', async () => {
    const { merchantKey, card, other } = await setup();
    const accepted = await acceptSome(merchantKey, card.id, other.id);
    const ids = accepted.map((o) => o.id);
    await sleep(1100);
    // The jobs are waiting in Redis: the reconciler leaves them.
    const others = await staleOthers(sys, ids);
    expect((await runReconcile(sys.deps)).reenqueued).to.equal(others);
    for (const id of ids) {
      const { partition } = await sys.deps.db('operations').where({ id }).first('partition');
      const job = await sys.deps.queues.partitions[partition]!.getJob(id);
      expect(await job?.getState(), id).to.equal('waiting');
      expect(job!.timestamp, 'the job the API enqueued, not a new one').to.be.below(Date.now() - 1000);
    }

    workers = await startWorkers(sys.deps);
    const rows = await allTerminal(sys, ids);
    await exactlyOnce(sys, rows);
    await expectLedgersMatch(sys, card.id, { balance: 45_000, points: 100 });

    // A stalled job that runs again finds its operation terminal and changes nothing.
    const again = await runCardOperation(sys.deps, { operationId: ids[1]! });
    expect(again).to.deep.equal({ skipped: 'already terminal' });
    await exactlyOnce(sys, rows);
    await expectLedgersMatch(sys, card.id, { balance: 45_000, points: 100 });
  });

  it('the same job run by two workers at once (a stalled job picked up twice) applies once', async () => {
    const { merchantKey, card } = await setup();
    const r = await recharge(sys, card.id, { amount: '100.00' }, { wait: false });
    const rechargeRuns = await Promise.all([runCardOperation(sys.deps, { operationId: r.body.id }), runCardOperation(sys.deps, { operationId: r.body.id }), runCardOperation(sys.deps, { operationId: r.body.id })]);
    expect(rechargeRuns.filter((x) => JSON.stringify(x) === JSON.stringify({ status: 'succeeded' }))).to.have.length(1);
    const qr = await issueQr(sys, card.id);
    const pay = await charge(sys, merchantKey, { qr, amount: '60.00' }, { wait: false });
    const runs = await Promise.all([runCardOperation(sys.deps, { operationId: pay.body.id }), runCardOperation(sys.deps, { operationId: pay.body.id })]);
    expect(runs.filter((x) => JSON.stringify(x) === JSON.stringify({ status: 'succeeded' }))).to.have.length(1);
    await exactlyOnce(sys, await sys.deps.db('operations').whereIn('id', [r.body.id, pay.body.id]));
    await expectLedgersMatch(sys, card.id, { balance: 4_000, points: 60 });
  });

  it('an operation left `processing` by a dead worker (and lost from Redis) is driven to completion once', async () => {
    const { merchantKey, card, other } = await setup();
    const accepted = await acceptSome(merchantKey, card.id, other.id);
    const ids = accepted.map((o) => o.id);
    await sys.deps.db('operations').where({ id: ids[0] }).update({ status: 'processing', started_at: sys.deps.db.fn.now(), attempts: 1 });
    await sys.deps.redis.flushall();
    workers = await startWorkers(sys.deps);
    // Redis loses its data again while the workers run: the partitions' global concurrency is gone too.
    await sys.deps.redis.flushall();
    expect(await sys.deps.queues.partitions[0]!.getGlobalConcurrency()).to.equal(null);
    await sleep(1100);
    const others = await staleOthers(sys, ids);
    expect((await runReconcile(sys.deps)).reenqueued).to.equal(others + 4);
    // The reconciler puts back the one-job-at-a-time rule of every partition.
    for (const q of sys.deps.queues.partitions) expect(await q.getGlobalConcurrency()).to.equal(1);
    const rows = await allTerminal(sys, ids);
    await exactlyOnce(sys, rows);
    expect(rows.find((r) => r.id === ids[0])).to.include({ status: 'succeeded', attempts: 2 });
    await expectLedgersMatch(sys, card.id, { balance: 45_000, points: 100 });
  });

  it('a QR that expires while its charge waits in the queue still pays: it was valid when accepted', async () => {
    const { merchantKey, card } = await setup();
    const r = await recharge(sys, card.id, { amount: '100.00' }, { wait: false });
    const qr = await issueQr(sys, card.id, sys.adminKey, { ttl_seconds: 60 });
    const pay = await charge(sys, merchantKey, { qr, amount: '10.00' }, { wait: false });
    expect(pay.status).to.equal(202);
    // Expire it after acceptance (but before the worker runs); a later scan with it is refused.
    await sys.deps.db('card_qr_state').where({ card_id: card.id }).update({ expires_at: sys.deps.db.raw(`now()`) });
    const late = await charge(sys, merchantKey, { qr, amount: '10.00' }, { wait: false });
    workers = await startWorkers(sys.deps);
    expectSucceeded(await sys.http.get<OperationJson>(`/v1/operations/${r.body.id}`, { key: sys.adminKey, headers: { prefer: 'wait=10' } }));
    expectSucceeded(await sys.http.get<OperationJson>(`/v1/operations/${pay.body.id}`, { key: merchantKey, headers: { prefer: 'wait=10' } }));
    expectFailed(await sys.http.get<OperationJson>(`/v1/operations/${late.body.id}`, { key: merchantKey, headers: { prefer: 'wait=10' } }), 'QR_EXPIRED_OR_INVALID');
    await expectLedgersMatch(sys, card.id, { balance: 9_000, points: 10 });
  });

  it('freezing a card while its charge is queued fails the charge (its QR ended with the freeze) and the recharge (CARD_NOT_ACTIVE)', async () => {
    const { merchantKey, card } = await setup();
    const r = await recharge(sys, card.id, { amount: '100.00' }, { wait: false });
    const qr = await issueQr(sys, card.id);
    const pay = await charge(sys, merchantKey, { qr, amount: '10.00' }, { wait: 1 });
    expect(pay.status).to.equal(202);
    expect(pay.body.status).to.equal('queued');
    expect(pay.headers.get('preference-applied')).to.equal('wait=1');
    const freeze = await sys.http.post(`/v1/cards/${card.id}/freeze`, { reason: 'reported stolen' }, { key: sys.adminKey });
    expect(freeze.status, freeze.text).to.equal(200);

    workers = await startWorkers(sys.deps);
    const done = await sys.http.get<OperationJson>(`/v1/operations/${pay.body.id}`, { key: merchantKey, headers: { prefer: 'wait=10' } });
    expectFailed(done, 'QR_EXPIRED_OR_INVALID');
    // The recharge accepted before the freeze ran first but fails too: the card was frozen by the time it ran.
    const rch = await sys.http.get<OperationJson>(`/v1/operations/${r.body.id}`, { key: sys.adminKey, headers: { prefer: 'wait=10' } });
    expectFailed(rch, 'CARD_NOT_ACTIVE');
    await expectLedgersMatch(sys, card.id, { balance: 0, points: 0 });
  });
});
