import { expect } from 'chai';
import { countRows, createMember, createMerchant, issueCard } from '../helpers/fixtures.js';
import { charge, expectError, expectFailed, expectLedgersMatch, expectSucceeded, issueQr, newKey, recharge, rechargeOk, refund } from '../helpers/money.js';
import { startSystem, type TestSystem } from '../helpers/system.js';

describe('e2e: idempotency of operations', function () {
  this.timeout(60_000);
  let sys: TestSystem;
  let merchantKey: string;
  let merchantId: string;

  before(async () => {
    sys = await startSystem();
    const m = await createMerchant(sys);
    merchantKey = m.key;
    merchantId = m.merchant.id;
  });
  after(async () => {
    await sys.stop();
  });

  async function fundedCard(amount = '1000.00') {
    const member = await createMember(sys);
    const card = await issueCard(sys, { type: 'prepaid', ownerMemberId: member.id });
    if (amount !== '0') await rechargeOk(sys, card.id, amount);
    return card;
  }

  it('a missing Idempotency-Key is 400 IDEMPOTENCY_KEY_REQUIRED on every operation route, and nothing is recorded', async () => {
    const card = await fundedCard();
    const qr = await issueQr(sys, card.id);
    const opsBefore = await countRows(sys, 'operations', { merchant_id: merchantId });
    const cardOpsBefore = await countRows(sys, 'operations', { card_id: card.id });

    expectError(await charge(sys, merchantKey, { qr, amount: '10.00' }, { idempotencyKey: null }), 400, 'IDEMPOTENCY_KEY_REQUIRED');
    expectError(await refund(sys, merchantKey, { original_tx_no: 'PAY000', amount: '1.00' }, { idempotencyKey: null }), 400, 'IDEMPOTENCY_KEY_REQUIRED');
    expectError(await recharge(sys, card.id, { amount: '1.00' }, { idempotencyKey: null }), 400, 'IDEMPOTENCY_KEY_REQUIRED');
    expectError(await charge(sys, merchantKey, { qr, amount: '10.00' }, { idempotencyKey: '   ' }), 400, 'IDEMPOTENCY_KEY_REQUIRED');
    expectError(await charge(sys, merchantKey, { qr, amount: '10.00' }, { idempotencyKey: 'k'.repeat(256) }), 400, 'VALIDATION_ERROR');
    // 255 characters is still fine.
    expectSucceeded(await charge(sys, merchantKey, { qr, amount: '10.00' }, { idempotencyKey: 'k'.repeat(255) }));

    expect(await countRows(sys, 'operations', { merchant_id: merchantId })).to.equal(opsBefore + 1);
    expect(await countRows(sys, 'operations', { card_id: card.id })).to.equal(cardOpsBefore + 1);
    await expectLedgersMatch(sys, card.id, { balance: 99_000 });
  });

  it('a sequential duplicate returns the same operation: one transaction, one debit', async () => {
    const card = await fundedCard();
    const qr = await issueQr(sys, card.id);
    const key = newKey();
    const first = expectSucceeded(await charge(sys, merchantKey, { qr, amount: '120.00' }, { idempotencyKey: key }));
    // The QR is consumed by now; the replay still answers with the stored result.
    const second = await charge(sys, merchantKey, { qr, amount: '120.00' }, { idempotencyKey: key });
    expect(second.status).to.equal(200);
    expect(second.body).to.deep.equal(first);
    const third = await charge(sys, merchantKey, { qr, amount: '120.00' }, { idempotencyKey: key, wait: false });
    expect(third.status, 'a replay of a terminal operation without Prefer').to.be.oneOf([200, 202]);
    expect(third.body).to.deep.equal(first);

    expect(await countRows(sys, 'operations', { idempotency_key: key })).to.equal(1);
    expect(await countRows(sys, 'transactions', { card_id: card.id, type: 'payment' })).to.equal(1);
    expect(await countRows(sys, 'balance_ledger', { card_id: card.id, reason: 'payment' })).to.equal(1);
    await expectLedgersMatch(sys, card.id, { balance: 88_000, points: 120 });
  });

  it('10 concurrent duplicates make one operation and one debit', async () => {
    const card = await fundedCard();
    const qr = await issueQr(sys, card.id);
    const key = newKey();
    const results = await Promise.all(Array.from({ length: 10 }, () => charge(sys, merchantKey, { qr, amount: '75.50' }, { idempotencyKey: key, wait: 20 })));
    const ids = new Set(results.map((r) => r.body.id));
    expect(ids.size, JSON.stringify(results.map((r) => [r.status, r.body]))).to.equal(1);
    for (const r of results) expectSucceeded(r);
    expect(await countRows(sys, 'operations', { idempotency_key: key })).to.equal(1);
    expect(await countRows(sys, 'transactions', { card_id: card.id, type: 'payment' })).to.equal(1);
    await expectLedgersMatch(sys, card.id, { balance: 100_000 - 7_550, points: 75 });
  });

  it('10 concurrent duplicate recharges make one credit', async () => {
    const card = await fundedCard('0');
    const key = newKey();
    const results = await Promise.all(Array.from({ length: 10 }, () => recharge(sys, card.id, { amount: '33.33' }, { idempotencyKey: key, wait: 20 })));
    expect(new Set(results.map((r) => r.body.id)).size).to.equal(1);
    for (const r of results) expectSucceeded(r);
    await expectLedgersMatch(sys, card.id, { balance: 3_333 });
  });

  it('the same key with a changed body is 409 IDEMPOTENCY_KEY_REUSED and changes nothing', async () => {
    const card = await fundedCard();
    const qr = await issueQr(sys, card.id);
    const key = newKey();
    const first = expectSucceeded(await charge(sys, merchantKey, { qr, amount: '10.00' }, { idempotencyKey: key }));

    const changedAmount = await charge(sys, merchantKey, { qr, amount: '11.00' }, { idempotencyKey: key });
    expectError(changedAmount, 409, 'IDEMPOTENCY_KEY_REUSED');
    expect((changedAmount.body as unknown as { error: { details: unknown } }).error.details).to.deep.equal({ operation_id: first.id });
    expectError(await charge(sys, merchantKey, { qr, amount: '10.00', external_order_id: 'X' }, { idempotencyKey: key }), 409, 'IDEMPOTENCY_KEY_REUSED');
    const qr2 = await issueQr(sys, card.id);
    expectError(await charge(sys, merchantKey, { qr: qr2, amount: '10.00' }, { idempotencyKey: key }), 409, 'IDEMPOTENCY_KEY_REUSED');
    // Another operation type under the same key (same principal) is a different request too.
    const pay = first.result!.tx_no as string;
    expectError(await refund(sys, merchantKey, { original_tx_no: pay, amount: '10.00' }, { idempotencyKey: key }), 409, 'IDEMPOTENCY_KEY_REUSED');

    expect(await countRows(sys, 'operations', { idempotency_key: key })).to.equal(1);
    await expectLedgersMatch(sys, card.id, { balance: 99_000, points: 10 });
  });

  it('keys are scoped to the principal: another merchant may use the same key for its own request', async () => {
    const card = await fundedCard();
    const other = await createMerchant(sys);
    const key = newKey();
    expectSucceeded(await charge(sys, merchantKey, { qr: await issueQr(sys, card.id), amount: '1.00' }, { idempotencyKey: key }));
    expectSucceeded(await charge(sys, other.key, { qr: await issueQr(sys, card.id), amount: '2.00' }, { idempotencyKey: key }));
    expect(await countRows(sys, 'operations', { idempotency_key: key })).to.equal(2);
    await expectLedgersMatch(sys, card.id, { balance: 99_700 });
  });

  it('failures are sticky: a retry with the same key stays INSUFFICIENT_BALANCE even after the card gets money', async () => {
    const card = await fundedCard('50.00');
    const qr = await issueQr(sys, card.id);
    const key = newKey();
    const failed = expectFailed(await charge(sys, merchantKey, { qr, amount: '80.00' }, { idempotencyKey: key }), 'INSUFFICIENT_BALANCE');
    await rechargeOk(sys, card.id, '100.00');

    const retry = await charge(sys, merchantKey, { qr, amount: '80.00' }, { idempotencyKey: key });
    expect(retry.status).to.equal(200);
    expect(retry.body).to.deep.equal(failed);
    expect(await countRows(sys, 'transactions', { card_id: card.id, type: 'payment' })).to.equal(0);
    await expectLedgersMatch(sys, card.id, { balance: 15_000, points: 0 });

    // A new key is a new request, and now it pays (the QR was not consumed by the failure).
    expectSucceeded(await charge(sys, merchantKey, { qr, amount: '80.00' }));
    await expectLedgersMatch(sys, card.id, { balance: 7_000, points: 80 });
  });

  it('299 and "299.00" (and "299.0") are the same request', async () => {
    const card = await fundedCard();
    const qr = await issueQr(sys, card.id);
    const key = newKey();
    const first = expectSucceeded(await charge(sys, merchantKey, { qr, amount: 299 }, { idempotencyKey: key }));
    for (const amount of ['299.00', '299.0', 299.0, '299']) {
      const replay = await charge(sys, merchantKey, { qr, amount }, { idempotencyKey: key });
      expect(replay.status, `${JSON.stringify(amount)}: ${replay.text}`).to.equal(200);
      expect(replay.body.id).to.equal(first.id);
    }
    expectError(await charge(sys, merchantKey, { qr, amount: '299.01' }, { idempotencyKey: key }), 409, 'IDEMPOTENCY_KEY_REUSED');
    expect(await countRows(sys, 'transactions', { card_id: card.id, type: 'payment' })).to.equal(1);
    await expectLedgersMatch(sys, card.id, { balance: 70_100, points: 299 });
  });

  it('a recharge replay by the same key for another card is 409', async () => {
    const a = await fundedCard('0');
    const b = await fundedCard('0');
    const key = newKey();
    expectSucceeded(await recharge(sys, a.id, { amount: '5.00' }, { idempotencyKey: key }));
    expectError(await recharge(sys, b.id, { amount: '5.00' }, { idempotencyKey: key }), 409, 'IDEMPOTENCY_KEY_REUSED');
    await expectLedgersMatch(sys, a.id, { balance: 500 });
    await expectLedgersMatch(sys, b.id, { balance: 0 });
  });
});
