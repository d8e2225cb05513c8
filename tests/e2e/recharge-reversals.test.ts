import { expect } from 'chai';
import { createMember, createMerchant, issueCard } from '../helpers/fixtures.js';
import { chargeOk, expectError, expectFailed, expectLedgersMatch, expectSucceeded, outboxEventsOf, rechargeOk } from '../helpers/money.js';
import { reverseRecharge } from '../helpers/operator-money.js';
import { startSystem, type TestSystem } from '../helpers/system.js';

/** POST /v1/cards/:id/recharge-reversals: a recharge charged back by the payment provider. */
describe('e2e: recharge reversals', function () {
  this.timeout(60_000);
  let sys: TestSystem;
  let shopKey: string;

  before(async () => {
    sys = await startSystem();
    shopKey = (await createMerchant(sys)).key;
  });
  after(async () => {
    await sys.stop();
  });

  async function rechargedCard(amount: string) {
    const member = await createMember(sys);
    const card = await issueCard(sys, { type: 'prepaid', ownerMemberId: member.id });
    const rch = await rechargeOk(sys, card.id, amount);
    return { card, txNo: rch.result!.tx_no as string };
  }

  it('takes back part, then the rest, of a recharge; more than is left is REFUND_EXCEEDS_AVAILABLE; the recharge tracks what was reversed', async () => {
    const { card, txNo } = await rechargedCard('300.00');
    const first = expectSucceeded(await reverseRecharge(sys, card.id, { original_tx_no: txNo, amount: '100.00', reason: 'chargeback 88' }));
    expect(first.type).to.equal('recharge_reversal');
    expect(first.result).to.deep.include({ amount: '100.00', balance: '200.00', original_tx_no: txNo });
    expect(first.result!.tx_no).to.match(/^RRV\d{21}$/);
    let recharge = await sys.deps.db('transactions').where({ tx_no: txNo }).first();
    expect(recharge).to.include({ status: 'partially_refunded' });
    expect(Number(recharge.refunded_amount_minor)).to.equal(10_000);

    expectFailed(await reverseRecharge(sys, card.id, { original_tx_no: txNo, amount: '200.01' }), 'REFUND_EXCEEDS_AVAILABLE');
    expectSucceeded(await reverseRecharge(sys, card.id, { original_tx_no: txNo, amount: '200.00' }));
    recharge = await sys.deps.db('transactions').where({ tx_no: txNo }).first();
    expect(recharge).to.include({ status: 'refunded' });
    expect(Number(recharge.refunded_amount_minor)).to.equal(30_000);
    expectFailed(await reverseRecharge(sys, card.id, { original_tx_no: txNo, amount: '0.01' }), 'REFUND_EXCEEDS_AVAILABLE');
    await expectLedgersMatch(sys, card.id, { balance: 0 });

    const [tx] = await sys.deps.db('transactions').where({ operation_id: first.id });
    expect(tx).to.include({ type: 'recharge_reversal', original_tx_id: recharge.id, merchant_id: null, reason: 'chargeback 88', payment_method: 'cash' });
    const reasons = (await sys.deps.db('balance_ledger').where({ card_id: card.id }).orderBy('id')).map((l) => [l.reason, Number(l.delta_minor)]);
    expect(reasons).to.deep.equal([
      ['recharge', 30_000],
      ['recharge_reversal', -10_000],
      ['recharge_reversal', -20_000],
    ]);
  });

  it('refuses what the card has spent (INSUFFICIENT_BALANCE): only what it still holds goes', async () => {
    const { card, txNo } = await rechargedCard('100.00');
    await chargeOk(sys, shopKey, card.id, '70.00');
    const refused = expectFailed(await reverseRecharge(sys, card.id, { original_tx_no: txNo, amount: '30.01' }), 'INSUFFICIENT_BALANCE');
    const [event] = await outboxEventsOf(sys, refused.id);
    expect(event).to.include({ type: 'recharge_reversal.failed', merchant_id: null });
    expect(event.data.error.code).to.equal('INSUFFICIENT_BALANCE');
    expectSucceeded(await reverseRecharge(sys, card.id, { original_tx_no: txNo, amount: '30.00' }));
    await expectLedgersMatch(sys, card.id, { balance: 0, points: 70 });
  });

  it("ORIGINAL_TX_NOT_FOUND: another card's recharge, a payment, an unknown number; admin only", async () => {
    const a = await rechargedCard('50.00');
    const b = await rechargedCard('50.00');
    expectFailed(await reverseRecharge(sys, a.card.id, { original_tx_no: b.txNo, amount: '1.00' }), 'ORIGINAL_TX_NOT_FOUND');
    const pay = await chargeOk(sys, shopKey, a.card.id, '5.00');
    expectFailed(await reverseRecharge(sys, a.card.id, { original_tx_no: pay.result!.tx_no, amount: '1.00' }), 'ORIGINAL_TX_NOT_FOUND');
    expectFailed(await reverseRecharge(sys, a.card.id, { original_tx_no: 'RCH000', amount: '1.00' }), 'ORIGINAL_TX_NOT_FOUND');
    expectError(await reverseRecharge(sys, a.card.id, { original_tx_no: a.txNo, amount: '1.00' }, { key: shopKey }), 403, 'FORBIDDEN');
    expectError(await sys.http.post(`/v1/cards/${a.card.id}/recharge-reversals`, { original_tx_no: a.txNo, amount: '1.00' }, { key: sys.adminKey, headers: { 'idempotency-key': 'x-no-reason' } }), 400, 'VALIDATION_ERROR');
    await expectLedgersMatch(sys, a.card.id, { balance: 4_500 });
    await expectLedgersMatch(sys, b.card.id, { balance: 5_000 });
  });

  it('concurrent reversals of one recharge never take back more than it credited', async () => {
    const { card, txNo } = await rechargedCard('100.00');
    await rechargeOk(sys, card.id, '500.00');
    const results = await Promise.all(Array.from({ length: 8 }, () => reverseRecharge(sys, card.id, { original_tx_no: txNo, amount: '30.00' }, { wait: 20 })));
    const ok = results.filter((r) => r.body.status === 'succeeded');
    expect(ok).to.have.length(3);
    expect(results.filter((r) => r.body.status === 'failed').map((r) => r.body.error!.code)).to.deep.equal(Array(5).fill('REFUND_EXCEEDS_AVAILABLE'));
    const recharge = await sys.deps.db('transactions').where({ tx_no: txNo }).first();
    expect(Number(recharge.refunded_amount_minor)).to.equal(9_000);
    await expectLedgersMatch(sys, card.id, { balance: 51_000 });
  });
});
