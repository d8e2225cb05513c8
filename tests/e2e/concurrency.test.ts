import { expect } from 'chai';
import { bind, createMember, createMerchant, issueCard, memberToken } from '../helpers/fixtures.js';
import { charge, expectLedgersMatch, getCard, issueQr, rechargeOk, type OperationJson } from '../helpers/money.js';
import { startSystem, type TestSystem } from '../helpers/system.js';
import type { HttpResult } from '../helpers/http.js';

function outcomes(results: HttpResult<OperationJson>[]) {
  for (const r of results) {
    expect(r.status, r.text).to.equal(200);
    expect(['succeeded', 'failed']).to.include(r.body.status);
  }
  const succeeded = results.filter((r) => r.body.status === 'succeeded');
  const failed = results.filter((r) => r.body.status === 'failed');
  return { succeeded, failed, failCodes: failed.map((r) => r.body.error!.code) };
}

describe('e2e: concurrency on one card', function () {
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

  it('10 family members charge 200.00 at once on a shared card holding 1,000.00: exactly 5 succeed, balance 0.00, never negative', async () => {
    const owner = await createMember(sys);
    const card = await issueCard(sys, { type: 'prepaid', ownerMemberId: owner.id });
    await rechargeOk(sys, card.id, '1000.00');

    const tokens = [await memberToken(sys, owner.id)];
    for (let i = 0; i < 9; i++) {
      const m = await createMember(sys, { name: `家人${i}` });
      const token = await memberToken(sys, m.id);
      await bind(sys, { key: token, cardNo: card.card_no });
      tokens.push(token);
    }
    expect(await sys.deps.db('card_bindings').where({ card_id: card.id })).to.have.length(10);
    // Each member holds its own live QR for the same card.
    const qrs = await Promise.all(tokens.map((t) => issueQr(sys, card.id, t)));
    expect(new Set(qrs).size).to.equal(10);
    expect(await sys.deps.db('card_qr_state').where({ card_id: card.id })).to.have.length(10);

    const results = await Promise.all(qrs.map((qr, i) => charge(sys, merchantKey, { qr, amount: '200.00', external_order_id: `FAM-${i}` }, { wait: 20 })));
    const { succeeded, failCodes } = outcomes(results);
    expect(succeeded).to.have.length(5);
    expect(failCodes).to.deep.equal(Array(5).fill('INSUFFICIENT_BALANCE'));
    for (const s of succeeded) expect(s.body.result).to.include({ final_amount: '200.00', raw_amount: '200.00' });

    expect(await getCard(sys, card.id)).to.include({ balance: '0.00', points: 1000 });
    await expectLedgersMatch(sys, card.id, { balance: 0, points: 1000 });
    const ledger = await sys.deps.db('balance_ledger').where({ card_id: card.id }).orderBy('id');
    expect(ledger.map((r) => Number(r.balance_after_minor))).to.deep.equal([100_000, 80_000, 60_000, 40_000, 20_000, 0]);
    for (const row of ledger) expect(Number(row.balance_after_minor)).to.be.at.least(0);
    const payments = await sys.deps.db('transactions').where({ card_id: card.id, type: 'payment' });
    expect(payments).to.have.length(5);
    expect(new Set(payments.map((p) => p.member_id)).size).to.equal(5);
    // Every failed operation wrote no transaction.
    for (const r of results.filter((x) => x.body.status === 'failed')) {
      expect(await sys.deps.db('transactions').where({ operation_id: r.body.id })).to.have.length(0);
    }
  });

  it('10 concurrent charges with one single-use QR (different idempotency keys): exactly 1 succeeds, 9 are QR_EXPIRED_OR_INVALID', async () => {
    const owner = await createMember(sys);
    const card = await issueCard(sys, { type: 'prepaid', ownerMemberId: owner.id });
    await rechargeOk(sys, card.id, '1000.00');
    const qr = await issueQr(sys, card.id);

    const results = await Promise.all(Array.from({ length: 10 }, () => charge(sys, merchantKey, { qr, amount: '10.00' }, { wait: 20 })));
    expect(new Set(results.map((r) => r.body.id)).size).to.equal(10);
    const { succeeded, failCodes } = outcomes(results);
    expect(succeeded).to.have.length(1);
    expect(failCodes).to.deep.equal(Array(9).fill('QR_EXPIRED_OR_INVALID'));
    await expectLedgersMatch(sys, card.id, { balance: 99_000, points: 10 });
    expect(await sys.deps.db('transactions').where({ card_id: card.id, type: 'payment' })).to.have.length(1);
  });

  it('concurrent charges on different cards all go through (partitions run side by side)', async () => {
    const cards = [];
    for (let i = 0; i < 6; i++) {
      const owner = await createMember(sys);
      const card = await issueCard(sys, { type: 'prepaid', ownerMemberId: owner.id });
      await rechargeOk(sys, card.id, '50.00');
      cards.push({ card, qr: await issueQr(sys, card.id) });
    }
    const results = await Promise.all(cards.map(({ qr }) => charge(sys, merchantKey, { qr, amount: '50.00' }, { wait: 20 })));
    expect(outcomes(results).succeeded).to.have.length(6);
    for (const { card } of cards) await expectLedgersMatch(sys, card.id, { balance: 0, points: 50 });
  });
});
