import { expect } from 'chai';
import { bind, countRows, createMember, createMerchant, issueCard, memberToken } from '../helpers/fixtures.js';
import { charge, expectError, expectFailed, expectLedgersMatch, expectSucceeded, outboxEventsOf, issueQr, rechargeOk, type OperationJson } from '../helpers/money.js';
import { adjust, awaitOperation, decide, secondAdminKey } from '../helpers/operator-money.js';
import type { HttpResult } from '../helpers/http.js';
import { startSystem, type TestSystem } from '../helpers/system.js';
import { runReconcile } from '../../jobs/reconcile.js';

/**
 * Balance adjustments (POST /v1/cards/:id/adjustments) and four eyes (POST /v1/operations/:id/approve
 * · /reject): ADJUSTMENT_APPROVAL_OVER is 100.00 here, so the tests need no large balances.
 */
describe('e2e: adjustments and four eyes', function () {
  this.timeout(90_000);
  let sys: TestSystem;
  let approverKey: string;

  before(async () => {
    sys = await startSystem({ ADJUSTMENT_APPROVAL_OVER: 10_000, RECONCILE_AFTER_S: 1 });
    approverKey = await secondAdminKey(sys);
  });
  after(async () => {
    await sys.stop();
  });

  async function prepaid(balance: string) {
    const member = await createMember(sys);
    const card = await issueCard(sys, { type: 'prepaid', ownerMemberId: member.id });
    await rechargeOk(sys, card.id, balance);
    return { member, card };
  }

  /** The outbox events of an operation: type, and for a refusal its code and amount. */
  async function eventsOf(operationId: string) {
    const rows = await outboxEventsOf(sys, operationId);
    return rows.map((e) => (e.data.error ? { type: e.type, code: e.data.error.code, amount: e.data.amount } : { type: e.type }));
  }

  it('a signed adjustment moves the balance: transaction `adjustment` with the signed amount and reason, ledger reason `adjustment`, audited', async () => {
    const { card } = await prepaid('50.00');
    const down = expectSucceeded(await adjust(sys, card.id, '-25.00', { reason: 'double credit on 12/01' }));
    expect(down.type).to.equal('adjustment');
    expect(down.result).to.deep.include({ amount: '-25.00', balance: '25.00', card_id: card.id });
    expect(down.result!.tx_no).to.match(/^ADJ\d{21}$/);
    const up = expectSucceeded(await adjust(sys, card.id, 10.5));
    expect(up.result).to.include({ amount: '10.50', balance: '35.50' });
    await expectLedgersMatch(sys, card.id, { balance: 3_550, points: 0 });

    const [tx] = await sys.deps.db('transactions').where({ operation_id: down.id });
    expect(tx).to.include({ type: 'adjustment', merchant_id: null, reason: 'double credit on 12/01' });
    expect([Number(tx.raw_amount_minor), Number(tx.final_amount_minor)]).to.deep.equal([-2_500, -2_500]);
    const ledger = await sys.deps.db('balance_ledger').where({ card_id: card.id, reason: 'adjustment' }).orderBy('id');
    expect(ledger.map((l) => Number(l.delta_minor))).to.deep.equal([-2_500, 1_050]);
    const history = await sys.http.get(`/v1/cards/${card.id}/transactions?type=adjustment`, { key: sys.adminKey });
    expect(history.status, history.text).to.equal(200);
    expect(history.body.data.map((t: { final_amount: string }) => t.final_amount)).to.deep.equal(['10.50', '-25.00']);
    const audit = await sys.deps.db('audit_events').where({ action: 'adjustment.succeeded', object_id: down.result!.tx_no }).first();
    expect(audit.context).to.include({ operation_id: down.id, amount_minor: -2_500, reason: 'double credit on 12/01' });
    expect((await eventsOf(down.id)).map((e) => e.type)).to.deep.equal(['adjustment.succeeded']);
  });

  it('never below zero: INSUFFICIENT_BALANCE and nothing applied; exactly to 0 goes', async () => {
    const { card } = await prepaid('20.00');
    const op = expectFailed(await adjust(sys, card.id, '-20.01'), 'INSUFFICIENT_BALANCE');
    expect(await sys.deps.db('transactions').where({ operation_id: op.id })).to.have.length(0);
    // The outbox hears of the refusal as of a success (API.md: `<type>.succeeded` / `.failed`).
    expect(await eventsOf(op.id)).to.deep.equal([{ type: 'adjustment.failed', code: 'INSUFFICIENT_BALANCE', amount: '-20.01' }]);
    expect(expectSucceeded(await adjust(sys, card.id, '-20.00')).result).to.include({ balance: '0.00' });
    await expectLedgersMatch(sys, card.id, { balance: 0 });
  });

  it('admin only; a signed amount with ≤ 2 decimals, not 0, and a reason (400 otherwise); nothing recorded', async () => {
    const { member, card } = await prepaid('10.00');
    const merchant = await createMerchant(sys);
    expectError(await adjust(sys, card.id, '5.00', { key: merchant.key }), 403, 'FORBIDDEN');
    expectError(await adjust(sys, card.id, '5.00', { key: await memberToken(sys, member.id) }), 403, 'FORBIDDEN');
    for (const bad of ['0', '-0.00', '-1.234', '1e2', '--1', '+1', '']) expectError(await adjust(sys, card.id, bad), 400, 'AMOUNT_INVALID');
    expectError(await sys.http.post(`/v1/cards/${card.id}/adjustments`, { amount: '-1.00' }, { key: sys.adminKey, headers: { 'idempotency-key': 'no-reason' } }), 400, 'VALIDATION_ERROR');
    expectError(await adjust(sys, '00000000-0000-4000-8000-000000000000', '1.00'), 404, 'NOT_FOUND');
    expect(await countRows(sys, 'operations', { card_id: card.id, type: 'adjustment' })).to.equal(0);
  });

  it('above ADJUSTMENT_APPROVAL_OVER it waits in requires_approval: 202, not enqueued, not taken by the reconciler, a wait ends at once', async () => {
    const { card } = await prepaid('10.00');
    // Exactly the threshold goes through; a cent more waits, either way.
    expect(expectSucceeded(await adjust(sys, card.id, '100.00')).result).to.include({ balance: '110.00' });
    const held = await adjust(sys, card.id, '-100.01', { wait: 5 });
    expect(held.status, held.text).to.equal(202);
    expect(held.body).to.include({ type: 'adjustment', status: 'requires_approval', completed_at: null, result: null, error: null });
    const started = Date.now();
    const read = await awaitOperation(sys, held.body.id, sys.adminKey, 5);
    expect(Date.now() - started, 'a wait ends at requires_approval').to.be.below(2000);
    expect(read.status).to.equal(200);
    expect(read.body.status).to.equal('requires_approval');

    const partition = (await sys.deps.db('operations').where({ id: held.body.id }).first()).partition as number;
    expect(await sys.deps.queues.partitions[partition]!.getJob(held.body.id)).to.equal(undefined);
    // Old enough for the reconciler (RECONCILE_AFTER_S 1): it still leaves it alone.
    await sys.deps.db('operations').where({ id: held.body.id }).update({ created_at: sys.deps.db.raw(`now() - interval '1 hour'`) });
    await runReconcile(sys.deps);
    expect(await sys.deps.queues.partitions[partition]!.getJob(held.body.id)).to.equal(undefined);
    expect((await sys.deps.db('operations').where({ id: held.body.id }).first()).status).to.equal('requires_approval');
    await expectLedgersMatch(sys, card.id, { balance: 11_000 });
  });

  it('four eyes: the key that asked may not approve (403 FORBIDDEN); another admin key approves → queued, applied once; a second decision is 409', async () => {
    const { card } = await prepaid('500.00');
    const held = await adjust(sys, card.id, '-300.00', { wait: false });
    expect(held.body.status).to.equal('requires_approval');
    expectError(await decide(sys, held.body.id, 'approve', sys.adminKey), 403, 'FORBIDDEN');
    expectError(await decide(sys, held.body.id, 'reject', sys.adminKey), 403, 'FORBIDDEN');
    const merchant = await createMerchant(sys);
    expectError(await decide(sys, held.body.id, 'approve', merchant.key), 403, 'FORBIDDEN');
    expect((await sys.deps.db('operations').where({ id: held.body.id }).first()).status).to.equal('requires_approval');

    const approved = await decide(sys, held.body.id, 'approve', approverKey, 'ticket 4711');
    expect(approved.status, approved.text).to.equal(202);
    expect(approved.body).to.include({ id: held.body.id, status: 'queued' });
    const done = expectSucceeded(await awaitOperation(sys, held.body.id));
    expect(done.result).to.include({ amount: '-300.00', balance: '200.00' });
    expect(await sys.deps.db('transactions').where({ operation_id: held.body.id })).to.have.length(1);
    await expectLedgersMatch(sys, card.id, { balance: 20_000 });

    expectError(await decide(sys, held.body.id, 'approve', approverKey), 409, 'CONFLICT');
    expectError(await decide(sys, held.body.id, 'reject', approverKey), 409, 'CONFLICT');
    const audit = await sys.deps.db('audit_events').where({ object_type: 'operation', object_id: held.body.id }).orderBy('id');
    expect(audit.map((a) => a.action)).to.deep.equal(['operation.approve']);
    expect(audit[0].context).to.include({ type: 'adjustment', amount: '-300.00', reason: 'ticket 4711' });
    expect(audit[0].actor_id).to.not.equal((await sys.deps.db('operations').where({ id: held.body.id }).first()).api_key_id);
    await expectLedgersMatch(sys, card.id, { balance: 20_000 });
  });

  it('reject ends it `rejected` with APPROVAL_REJECTED, terminal: nothing applied, approve afterwards 409, audited', async () => {
    const { card } = await prepaid('50.00');
    const held = await adjust(sys, card.id, '200.00', { wait: false });
    expect(held.body.status).to.equal('requires_approval');
    const rejected = await decide(sys, held.body.id, 'reject', approverKey, 'no ticket');
    expect(rejected.status, rejected.text).to.equal(200);
    expect(rejected.body).to.deep.include({ status: 'rejected', result: null });
    expect(rejected.body.error).to.deep.equal({ code: 'APPROVAL_REJECTED', message: 'Rejected by an approver: no ticket' });
    expect(rejected.body.completed_at).to.be.a('string');
    const read = await awaitOperation(sys, held.body.id, sys.adminKey, 1);
    expect(read.body).to.include({ status: 'rejected' });
    // The same request again is the same (rejected) operation: a retry cannot turn it into a credit.
    expectError(await decide(sys, held.body.id, 'approve', approverKey), 409, 'CONFLICT');
    expect(await sys.deps.db('transactions').where({ operation_id: held.body.id })).to.have.length(0);
    await expectLedgersMatch(sys, card.id, { balance: 5_000 });
    const audit = await sys.deps.db('audit_events').where({ object_type: 'operation', object_id: held.body.id, action: 'operation.reject' }).first();
    expect(audit.context).to.include({ reason: 'no ticket', amount: '200.00' });
    expect(await eventsOf(held.body.id)).to.deep.equal([{ type: 'adjustment.failed', code: 'APPROVAL_REJECTED', amount: '200.00' }]);
  });

  it('its rules are judged when it runs: approved after the card was spent, it fails INSUFFICIENT_BALANCE', async () => {
    const shop = await createMerchant(sys);
    const { card } = await prepaid('300.00');
    const held = await adjust(sys, card.id, '-250.00', { wait: false });
    expectSucceeded(await charge(sys, shop.key, { qr: await issueQr(sys, card.id), amount: '100.00' }));
    expect((await decide(sys, held.body.id, 'approve', approverKey)).status).to.equal(202);
    expectFailed(await awaitOperation(sys, held.body.id), 'INSUFFICIENT_BALANCE');
    await expectLedgersMatch(sys, card.id, { balance: 20_000 });
  });

  it('two approvers at once: one approval, one 409; applied once', async () => {
    const { card } = await prepaid('500.00');
    const third = await secondAdminKey(sys, 'third');
    const held = await adjust(sys, card.id, '-150.00', { wait: false });
    const [a, b] = await Promise.all([decide(sys, held.body.id, 'approve', approverKey), decide(sys, held.body.id, 'approve', third)]);
    expect([a.status, b.status].sort()).to.deep.equal([202, 409]);
    expectSucceeded(await awaitOperation(sys, held.body.id));
    expect(await sys.deps.db('transactions').where({ operation_id: held.body.id })).to.have.length(1);
    await expectLedgersMatch(sys, card.id, { balance: 35_000 });
    expectError(await decide(sys, 'op_00000000000000000000000000000000', 'approve', approverKey), 404, 'NOT_FOUND');
    expectError(await decide(sys, 'not-an-id', 'reject', approverKey), 404, 'NOT_FOUND');
  });

  it('an operation that is not waiting for approval (a payment, a small adjustment) cannot be approved: 409', async () => {
    const { card } = await prepaid('10.00');
    const small = expectSucceeded(await adjust(sys, card.id, '1.00'));
    expectError(await decide(sys, small.id, 'approve', approverKey), 409, 'CONFLICT');
    expectError(await decide(sys, small.id, 'reject', approverKey), 409, 'CONFLICT');
  });

  it('adjustments (both ways) racing payments on one card: balance = Σ ledger, never negative, every success accounted for', async () => {
    const shop = await createMerchant(sys);
    const { card } = await prepaid('1000.00');
    // The owner and 9 bound members (MAX_BINDINGS_PER_CARD 10), each with its own QR for the card.
    const qrs = [await issueQr(sys, card.id)];
    for (let i = 0; i < 9; i++) {
      const token = await memberToken(sys, (await createMember(sys, { name: `家人${i}` })).id);
      await bind(sys, { key: token, cardNo: card.card_no });
      qrs.push(await issueQr(sys, card.id, token));
    }
    const requests: Promise<HttpResult<OperationJson>>[] = [
      ...qrs.map((qr) => charge(sys, shop.key, { qr, amount: '150.00' }, { wait: 25 })),
      ...Array.from({ length: 8 }, () => adjust(sys, card.id, '-90.00', { wait: 25 })),
      ...Array.from({ length: 3 }, () => adjust(sys, card.id, '40.00', { wait: 25 })),
    ];
    const results = await Promise.all(requests);
    let expected = 100_000;
    for (const r of results) {
      expect(r.status, r.text).to.equal(200);
      if (r.body.status === 'succeeded') expected += r.body.type === 'payment' ? -15_000 : Math.round(Number(r.body.result!.amount) * 100);
      else expect(r.body.error!.code, r.text).to.equal('INSUFFICIENT_BALANCE');
    }
    const succeeded = results.filter((r) => r.body.status === 'succeeded');
    expect(succeeded.length, 'some of each ran').to.be.at.least(7);
    expect(results.filter((r) => r.body.status === 'failed').length, 'the card ran out: some were refused').to.be.at.least(1);
    const card1 = await expectLedgersMatch(sys, card.id, { balance: expected });
    expect(card1.balance_minor).to.be.at.least(0);
    // Every balance on the way stayed ≥ 0 and each ledger row follows the one before it.
    const ledger = await sys.deps.db('balance_ledger').where({ card_id: card.id }).orderBy('id');
    let running = 0;
    for (const row of ledger) {
      running += Number(row.delta_minor);
      expect(Number(row.balance_after_minor)).to.equal(running);
      expect(running).to.be.at.least(0);
    }
    expect(ledger.filter((l) => l.reason === 'adjustment')).to.have.length(succeeded.filter((r) => r.body.type === 'adjustment').length);
  });
});
