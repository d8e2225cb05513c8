import { expect } from 'chai';
import { runReconcile } from '../../jobs/reconcile.js';
import { AppError } from '../../domain/errors.js';
import { partitionOf } from '../../domain/partition.js';
import { failOperation, runOperation } from '../../operations/runner.js';
import { closeCard, transfer } from '../helpers/card-ops.js';
import { createMember, issueCard } from '../helpers/fixtures.js';
import { expectLedgersMatch, type OperationJson } from '../helpers/money.js';
import { startSystem, type TestSystem } from '../helpers/system.js';

/**
 * The runner's follow-ups (operations/kind.ts), driven one job at a time with no workers running:
 * a transfer's debit commits with its credit leg's row and leaves the transfer open (continued);
 * each leg runs once however often its job runs; a lost enqueue is the reconciler's; a leg out of
 * attempts still returns the money; the end is never given up.
 */
describe('integration: follow-ups (a transfer leg by leg)', function () {
  this.timeout(60_000);
  let sys: TestSystem;

  before(async () => {
    // No batches: a job would take the queued legs of its partition along.
    sys = await startSystem({ RECONCILE_AFTER_S: 1, OPERATION_BATCH_MAX: 1 }, { workers: false });
  });
  after(async () => {
    await sys.stop();
  });

  const row = (id: string) => sys.deps.db('operations').where({ id }).first();
  const legs = (id: string) => sys.deps.db('operations').where({ parent_id: id }).orderBy('created_at');
  const balance = async (cardId: string) => Number((await sys.deps.db('member_cards').where({ id: cardId }).first('balance_minor')).balance_minor);
  const hasJob = async (op: { id: string; partition: number }) => !!(await sys.deps.queues.partitions[op.partition]!.getJob(op.id));

  /** Two cards of one owner, the source holding 100.00 (a recharge, run by hand). */
  async function cards() {
    const owner = await createMember(sys);
    const from = await issueCard(sys, { type: 'prepaid', ownerMemberId: owner.id });
    const to = await issueCard(sys, { type: 'prepaid', ownerMemberId: owner.id });
    const res = await sys.http.post<OperationJson>(`/v1/cards/${from.id}/recharges`, { amount: '100.00', payment_method: 'cash' }, { key: sys.adminKey, headers: { 'idempotency-key': `rch-${from.id}` } });
    expect(res.status).to.equal(202);
    await runOperation(sys.deps, res.body.id);
    expect(await balance(from.id)).to.equal(10_000);
    return { from, to };
  }

  async function accepted(res: { status: number; body: OperationJson; text: string }) {
    expect(res.status, res.text).to.equal(202);
    return (await row(res.body.id))!;
  }

  it('the debit leaves the transfer processing with its credit queued on the destination partition; the job again, the reconciler and a close of the source then do nothing wrong', async () => {
    const { from, to } = await cards();
    const t = await accepted(await transfer(sys, { from_card_id: from.id, to_card_id: to.id, amount: '40.00' }, { wait: false }));

    expect(await runOperation(sys.deps, t.id)).to.deep.equal({ status: 'continued' });
    const debited = await row(t.id);
    expect(debited).to.include({ status: 'processing', result: null, completed_at: null });
    expect(debited.continued_at).to.be.instanceOf(Date);
    expect(await balance(from.id)).to.equal(6_000);
    const [credit] = await legs(t.id);
    expect(credit).to.include({ id: `${t.id}-credit`, type: 'transfer_credit', status: 'queued', card_id: to.id, partition: partitionOf(to.id, sys.config.CARD_PARTITIONS), amount_minor: 4000, principal: t.principal, api_key_id: t.api_key_id });
    expect(await hasJob(credit)).to.equal(true);

    // The transfer's job again (stalled, re-enqueued): nothing changes, no second leg.
    expect(await runOperation(sys.deps, t.id)).to.deep.equal({ skipped: 'already terminal' });
    // Its last attempt failing would not end it either: its follow-ups do.
    expect(await failOperation(sys.deps, t.id, new AppError('INTERNAL_ERROR', 'test'))).to.deep.equal({ status: 'already done' });
    expect(await balance(from.id)).to.equal(6_000);
    expect(await legs(t.id)).to.have.length(1);

    // The credit's enqueue was lost (the worker died after the commit): the reconciler enqueues the leg, never the continued transfer.
    await sys.deps.queues.partitions[credit.partition]!.remove(credit.id);
    await sys.deps.queues.partitions[t.partition]!.remove(t.id);
    await sys.deps.db('operations').whereIn('id', [t.id, credit.id]).update({ created_at: sys.deps.db.raw(`now() - interval '1 minute'`) });
    await runReconcile(sys.deps);
    expect(await hasJob(credit)).to.equal(true);
    expect(await hasJob(t)).to.equal(false);

    // While the money is on its way, the source cannot be closed (it could have to come back).
    const close = await accepted(await closeCard(sys, from.id, {}, { wait: false }));
    await runOperation(sys.deps, close.id);
    expect(await row(close.id)).to.include({ status: 'failed', error_code: 'TRANSFER_IN_PROGRESS' });

    expect(await runOperation(sys.deps, credit.id)).to.deep.equal({ status: 'succeeded' });
    expect(await runOperation(sys.deps, credit.id)).to.deep.equal({ skipped: 'already terminal' });
    expect(await balance(to.id)).to.equal(4_000);
    const [, end] = await legs(t.id);
    expect(end).to.include({ id: `${t.id}-end`, type: 'transfer_end', status: 'queued', card_id: from.id, partition: t.partition, parent_id: t.id });
    expect(await row(t.id)).to.include({ status: 'processing' });

    expect(await runOperation(sys.deps, end.id)).to.deep.equal({ status: 'succeeded' });
    expect(await runOperation(sys.deps, end.id)).to.deep.equal({ skipped: 'already terminal' });
    const done = await row(t.id);
    expect(done.status).to.equal('succeeded');
    expect(done.result).to.include({ amount: '40.00', from_card_id: from.id, to_card_id: to.id });
    expect(done.completed_at).to.be.instanceOf(Date);
    await expectLedgersMatch(sys, from.id, { balance: 6_000 });
    await expectLedgersMatch(sys, to.id, { balance: 4_000 });

    const closedNow = await accepted(await closeCard(sys, from.id, {}, { wait: false }));
    await runOperation(sys.deps, closedNow.id);
    expect(await row(closedNow.id)).to.include({ status: 'succeeded' });
    await expectLedgersMatch(sys, from.id, { balance: 0 });
  });

  it('a credit out of attempts (INTERNAL_ERROR) still returns the money, and the end, never given up, ends the transfer failed once', async () => {
    const { from, to } = await cards();
    const t = await accepted(await transfer(sys, { from_card_id: from.id, to_card_id: to.id, amount: '25.00' }, { wait: false }));
    await runOperation(sys.deps, t.id);
    const [credit] = await legs(t.id);

    expect(await failOperation(sys.deps, credit.id, new AppError('INTERNAL_ERROR', 'The operation could not be completed; it was not applied'))).to.deep.equal({ status: 'failed', code: 'INTERNAL_ERROR' });
    const [, end] = await legs(t.id);
    expect(end.params.credit).to.include({ credited: false, code: 'INTERNAL_ERROR' });
    // The end is out of attempts too: it stays open for the reconciler, the money still off the source.
    expect(await failOperation(sys.deps, end.id, new AppError('INTERNAL_ERROR', 'test'))).to.deep.equal({ status: 'open' });
    expect(await row(end.id)).to.include({ status: 'queued' });
    expect(await balance(from.id)).to.equal(7_500);

    expect(await runOperation(sys.deps, end.id)).to.deep.equal({ status: 'succeeded' });
    expect(await row(t.id)).to.include({ status: 'failed', error_code: 'INTERNAL_ERROR' });
    await expectLedgersMatch(sys, from.id, { balance: 10_000 });
    await expectLedgersMatch(sys, to.id, { balance: 0 });
    const txs = await sys.deps.db('transactions').whereIn('operation_id', [t.id, credit.id, end.id]).orderBy('created_at');
    expect(txs.map((x) => [x.type, x.card_id, Number(x.final_amount_minor)])).to.deep.equal([
      ['transfer_debit', from.id, 2500],
      ['transfer_credit', from.id, 2500],
    ]);
  });
});
