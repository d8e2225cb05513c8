import { expect } from 'chai';
import { countRows, createMember, createMerchant, issueCard, memberWithToken } from '../helpers/fixtures.js';
import { adjustPointsOk, chargeOk, rechargeOk, expectError, expectFailed, expectLedgersMatch, expectSucceeded, getCard, refund } from '../helpers/money.js';
import { startSystem, type TestSystem } from '../helpers/system.js';

describe('e2e: refunds', function () {
  this.timeout(60_000);
  let sys: TestSystem;
  let merchantKey: string;

  before(async () => {
    sys = await startSystem();
    merchantKey = (await createMerchant(sys)).key;
  });
  after(async () => {
    await sys.stop();
  });

  async function prepaid(balance: string, points = 0) {
    const member = await createMember(sys);
    const card = await issueCard(sys, { type: 'prepaid', ownerMemberId: member.id });
    await rechargeOk(sys, card.id, balance);
    if (points) await adjustPointsOk(sys, card.id, points);
    return card;
  }

  it('partial refunds up to the final amount; one more is REFUND_EXCEEDS_AVAILABLE; points clawed back cumulatively by floor', async () => {
    // Silver: 299.00 → final 284.05, 299 points earned on top of 1000.
    const card = await prepaid('1000.00', 1000);
    const pay = await chargeOk(sys, merchantKey, card.id, '299.00');
    expect(pay.result).to.include({ final_amount: '284.05', points_earned: 299 });
    const txNo = pay.result!.tx_no as string;
    await expectLedgersMatch(sys, card.id, { balance: 71_595, points: 1299 });

    // clawed_total(r) = floor(299 × r / 28405)
    const claw = (refunded: number) => Math.floor((299 * refunded) / 28_405);
    const steps = [
      { amount: '100.00', minor: 10_000, status: 'partially_refunded' },
      { amount: '0.05', minor: 5, status: 'partially_refunded' },
      { amount: '84.00', minor: 8_400, status: 'partially_refunded' },
      { amount: '100.00', minor: 10_000, status: 'refunded' },
    ];
    let refunded = 0;
    let balance = 71_595;
    let points = 1299;
    for (const step of steps) {
      const res = await refund(sys, merchantKey, { original_tx_no: txNo, amount: step.amount, reason: 'customer return' });
      const op = expectSucceeded(res, `refund ${step.amount}`);
      expect(op.type).to.equal('refund');
      const clawed = claw(refunded + step.minor) - claw(refunded);
      refunded += step.minor;
      balance += step.minor;
      points -= clawed;
      expect(op.result).to.deep.include({ original_tx_no: txNo, amount: step.amount, points_clawed_back: clawed, original_status: step.status });
      expect(op.result!.refund_tx_no).to.match(/^REF\d{21}$/);
      await expectLedgersMatch(sys, card.id, { balance, points });
    }
    expect(refunded).to.equal(28_405);
    // Cumulatively exactly floor(299 × 284.05 / 284.05) = 299 points were clawed back.
    expect(points).to.equal(1000);
    expect(await getCard(sys, card.id)).to.include({ balance: '1000.00', points: 1000, level: 1 });

    expectFailed(await refund(sys, merchantKey, { original_tx_no: txNo, amount: '0.01' }), 'REFUND_EXCEEDS_AVAILABLE');
    const payment = await sys.deps.db('transactions').where({ tx_no: txNo }).first();
    expect(payment).to.include({ status: 'refunded' });
    expect(Number(payment.refunded_amount_minor)).to.equal(28_405);
    expect(Number(payment.points_clawed_back)).to.equal(299);
    const refunds = await sys.deps.db('transactions').where({ original_tx_id: payment.id, type: 'refund' });
    expect(refunds).to.have.length(4);
    expect(refunds.reduce((s, r) => s + Number(r.final_amount_minor), 0)).to.equal(28_405);
    await expectLedgersMatch(sys, card.id, { balance: 100_000, points: 1000 });
  });

  it('a single refund over the final amount is refused whole; the exact final amount then refunds all', async () => {
    const card = await prepaid('500.00', 1000);
    const pay = await chargeOk(sys, merchantKey, card.id, '100.00'); // final 95.00
    const txNo = pay.result!.tx_no as string;
    // 100.00 is the raw amount, not what was paid.
    const over = expectFailed(await refund(sys, merchantKey, { original_tx_no: txNo, amount: '100.00' }), 'REFUND_EXCEEDS_AVAILABLE');
    expect(over.error!.message).to.be.a('string');
    expect(await countRows(sys, 'transactions', { card_id: card.id, type: 'refund' })).to.equal(0);
    const op = expectSucceeded(await refund(sys, merchantKey, { original_tx_no: txNo, amount: 95 }));
    expect(op.result).to.include({ amount: '95.00', points_clawed_back: 100, original_status: 'refunded' });
    await expectLedgersMatch(sys, card.id, { balance: 50_000, points: 1000 });
  });

  it('a standard card refund credits no balance but claws back points', async () => {
    const { standardCard } = await memberWithToken(sys);
    const pay = await chargeOk(sys, merchantKey, standardCard.id, '200.00', { payment_method: 'cash' });
    expect(pay.result).to.include({ final_amount: '200.00', points_earned: 200 });
    const op = expectSucceeded(await refund(sys, merchantKey, { original_tx_no: pay.result!.tx_no, amount: '50.00' }));
    expect(op.result).to.include({ amount: '50.00', points_clawed_back: 50, original_status: 'partially_refunded' });
    await expectLedgersMatch(sys, standardCard.id, { balance: 0, points: 150 });
    expect(await countRows(sys, 'balance_ledger', { card_id: standardCard.id })).to.equal(0);
    const [ref] = await sys.deps.db('transactions').where({ operation_id: op.id });
    expect(ref).to.include({ type: 'refund', via_balance: false, payment_method: 'cash' });
  });

  it('a corporate card refund credits the balance and claws back nothing', async () => {
    const member = await createMember(sys);
    const card = await issueCard(sys, { type: 'corporate', ownerMemberId: member.id, fixedDiscount: '0.900' });
    await rechargeOk(sys, card.id, '100.00');
    const pay = await chargeOk(sys, merchantKey, card.id, '50.00'); // 45.00
    const op = expectSucceeded(await refund(sys, merchantKey, { original_tx_no: pay.result!.tx_no, amount: '45.00' }));
    expect(op.result).to.include({ points_clawed_back: 0, original_status: 'refunded' });
    await expectLedgersMatch(sys, card.id, { balance: 10_000, points: 0 });
  });

  it('clawback never takes the card below 0 points', async () => {
    const card = await prepaid('500.00');
    const pay = await chargeOk(sys, merchantKey, card.id, '300.00'); // 300 points
    await adjustPointsOk(sys, card.id, -250); // 50 left
    const op = expectSucceeded(await refund(sys, merchantKey, { original_tx_no: pay.result!.tx_no, amount: '300.00' }));
    expect(op.result).to.include({ points_clawed_back: 50, original_status: 'refunded' });
    await expectLedgersMatch(sys, card.id, { balance: 50_000, points: 0 });
  });

  it('another merchant cannot refund the payment: 404 NOT_FOUND and nothing recorded; unknown numbers too', async () => {
    const card = await prepaid('100.00');
    const pay = await chargeOk(sys, merchantKey, card.id, '40.00');
    const other = await createMerchant(sys);
    const opsBefore = await countRows(sys, 'operations', { merchant_id: other.merchant.id });
    expectError(await refund(sys, other.key, { original_tx_no: pay.result!.tx_no, amount: '1.00' }), 404, 'ORIGINAL_TX_NOT_FOUND');
    expectError(await refund(sys, other.key, { original_tx_no: 'PAY202601010000000000', amount: '1.00' }), 404, 'ORIGINAL_TX_NOT_FOUND');
    expectError(await refund(sys, merchantKey, { original_tx_no: 'PAY202601010000000000', amount: '1.00' }), 404, 'ORIGINAL_TX_NOT_FOUND');
    expect(await countRows(sys, 'operations', { merchant_id: other.merchant.id })).to.equal(opsBefore);
    expect(await countRows(sys, 'transactions', { card_id: card.id, type: 'refund' })).to.equal(0);
    await expectLedgersMatch(sys, card.id, { balance: 6_000, points: 40 });
    // The right merchant still can.
    expectSucceeded(await refund(sys, merchantKey, { original_tx_no: pay.result!.tx_no, amount: '1.00' }));
  });

  it('refund window: a payment older than REFUND_WINDOW_DAYS is REFUND_WINDOW_EXPIRED; inside it, it refunds', async () => {
    const card = await prepaid('100.00');
    const pay = await chargeOk(sys, merchantKey, card.id, '40.00');
    const days = sys.config.REFUND_WINDOW_DAYS;
    await sys.deps.db('transactions')
      .where({ tx_no: pay.result!.tx_no })
      .update({ created_at: sys.deps.db.raw(`now() - make_interval(days => ?) - interval '1 minute'`, [days]) });
    expectFailed(await refund(sys, merchantKey, { original_tx_no: pay.result!.tx_no, amount: '1.00' }), 'REFUND_WINDOW_EXPIRED');
    await expectLedgersMatch(sys, card.id, { balance: 6_000, points: 40 });

    await sys.deps.db('transactions')
      .where({ tx_no: pay.result!.tx_no })
      .update({ created_at: sys.deps.db.raw(`now() - make_interval(days => ?) + interval '1 hour'`, [days]) });
    expectSucceeded(await refund(sys, merchantKey, { original_tx_no: pay.result!.tx_no, amount: '1.00' }));
    await expectLedgersMatch(sys, card.id, { balance: 6_100, points: 39 });
  });

  it('refunding a REF… number is ORIGINAL_TX_NOT_FOUND', async () => {
    const card = await prepaid('100.00');
    const pay = await chargeOk(sys, merchantKey, card.id, '40.00');
    const ref = expectSucceeded(await refund(sys, merchantKey, { original_tx_no: pay.result!.tx_no, amount: '10.00' }));
    const refNo = ref.result!.refund_tx_no as string;
    expectFailed(await refund(sys, merchantKey, { original_tx_no: refNo, amount: '1.00' }), 'ORIGINAL_TX_NOT_FOUND');
    await expectLedgersMatch(sys, card.id, { balance: 7_000, points: 30 });
  });

  it('concurrent partial refunds never sum over the final amount', async () => {
    const card = await prepaid('1000.00');
    const pay = await chargeOk(sys, merchantKey, card.id, '100.00');
    const txNo = pay.result!.tx_no as string;
    const results = await Promise.all(Array.from({ length: 8 }, () => refund(sys, merchantKey, { original_tx_no: txNo, amount: '30.00' }, { wait: 20 })));
    const ok = results.filter((r) => r.body.status === 'succeeded');
    const failed = results.filter((r) => r.body.status === 'failed');
    expect(ok).to.have.length(3);
    expect(failed.map((r) => r.body.error!.code)).to.deep.equal(Array(5).fill('REFUND_EXCEEDS_AVAILABLE'));
    const payment = await sys.deps.db('transactions').where({ tx_no: txNo }).first();
    expect(Number(payment.refunded_amount_minor)).to.equal(9_000);
    expect(payment.status).to.equal('partially_refunded');
    await expectLedgersMatch(sys, card.id, { balance: 99_000, points: 10 });
  });
});
