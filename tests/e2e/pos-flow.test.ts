import { expect } from 'chai';
import { bind, createAppKey, createMember, createMerchant, issueCard, memberToken, memberWithToken } from '../helpers/fixtures.js';
import {
  adjustPointsOk,
  cardRow,
  charge,
  expectError,
  expectFailed,
  expectLedgersMatch,
  expectSucceeded,
  getCard,
  issueQr,
  newKey,
  pollOperation,
  recharge,
  rechargeOk,
  transactionsOf,
} from '../helpers/money.js';
import { startSystem, type TestSystem } from '../helpers/system.js';

describe('e2e: POS flow (member → card → recharge → QR → charge)', function () {
  this.timeout(60_000);
  let sys: TestSystem;
  let merchantKey: string;
  let merchantId: string;
  let appKey: string;

  before(async () => {
    sys = await startSystem();
    const m = await createMerchant(sys);
    merchantKey = m.key;
    merchantId = m.merchant.id;
    appKey = await createAppKey(sys);
  });
  after(async () => {
    await sys.stop();
  });

  it('prepaid card at silver level: recharge 1,000.00, charge 299.00 → final 284.05, balance 715.95, points 1299', async () => {
    const { member, token } = await memberWithToken(sys);
    const card = await issueCard(sys, { type: 'prepaid', ownerMemberId: member.id, key: appKey });
    expect(card).to.include({ type: 'prepaid', status: 'active', balance: '0.00', points: 0, level: 0 });

    // The member app's backend recharges the card after its payment provider took the money, and waits inline.
    expectError(await recharge(sys, card.id, { amount: '1000.00', payment_method: 'credit_card' }, { key: token }), 403, 'FORBIDDEN');
    const rch = await recharge(sys, card.id, { amount: '1000.00', payment_method: 'credit_card', payment_reference: `psp-${card.id}` }, { key: appKey, wait: 10 });
    expect(rch.headers.get('preference-applied')).to.equal('wait=10');
    const rchOp = expectSucceeded(rch, 'recharge');
    expect(rchOp.type).to.equal('recharge');
    expect(rchOp.result).to.include({ amount: '1000.00', balance: '1000.00' });
    expect(rchOp.result!.tx_no).to.match(/^RCH\d{8}\d{13}$/);

    await adjustPointsOk(sys, card.id, 1000);
    const silver = await getCard(sys, card.id);
    expect(silver).to.include({ points: 1000, level: 1, discount_rate: '0.950', balance: '1000.00' });

    const qr = await issueQr(sys, card.id, token);
    const started = Date.now();
    const res = await charge(sys, merchantKey, { qr, amount: 299, external_order_id: 'ORDER-1', tag: { lane: 3 } }, { wait: 10 });
    const elapsed = Date.now() - started;
    const op = expectSucceeded(res, 'charge');
    console.log(
      `      [latency] POST /v1/payments with Prefer: wait=10 answered in ${elapsed} ms; operation accept→done ${Date.parse(op.completed_at!) - Date.parse(op.created_at)} ms (Postgres clock)`,
    );
    expect(res.headers.get('preference-applied')).to.equal('wait=10');
    expect(res.headers.get('location')).to.equal(`/v1/operations/${op.id}`);
    expect(op.type).to.equal('payment');
    expect(op.id).to.match(/^op_[0-9a-f]{32}$/);
    expect(op.result).to.include({ raw_amount: '299.00', discount_rate: '0.950', final_amount: '284.05', points_earned: 299 });
    expect(op.result!.tx_no).to.match(/^PAY\d{21}$/);
    expect(op.result!.card).to.deep.equal({ card_no: `${card.card_no.slice(0, 4)}********${card.card_no.slice(-4)}`, type: 'prepaid', level: 1 });
    expect(op.result!.member.name).to.equal('王**');

    const after = await getCard(sys, card.id);
    expect(after).to.include({ balance: '715.95', points: 1299, level: 1 });
    await expectLedgersMatch(sys, card.id, { balance: 71_595, points: 1299 });

    const [tx] = await transactionsOf(sys, op.id);
    expect(tx).to.include({ tx_no: op.result!.tx_no, type: 'payment', status: 'completed', card_id: card.id, merchant_id: merchantId, member_id: member.id, via_balance: true, payment_method: 'balance', external_order_id: 'ORDER-1' });
    expect(Number(tx.raw_amount_minor)).to.equal(29_900);
    expect(Number(tx.final_amount_minor)).to.equal(28_405);
    expect(Number(tx.points_earned)).to.equal(299);
    const ledger = await sys.deps.db('balance_ledger').where({ transaction_id: tx.id });
    expect(ledger.map((r) => [Number(r.delta_minor), Number(r.balance_after_minor), r.reason])).to.deep.equal([[-28_405, 71_595, 'payment']]);
    const points = await sys.deps.db('point_ledger').where({ transaction_id: tx.id });
    expect(points.map((r) => [Number(r.delta), Number(r.points_after), r.reason])).to.deep.equal([[299, 1299, 'earn']]);
  });

  it('the same charge at regular level (0 points) costs 299.00', async () => {
    const member = await createMember(sys);
    const card = await issueCard(sys, { type: 'prepaid', ownerMemberId: member.id });
    await rechargeOk(sys, card.id, '1000.00');
    const qr = await issueQr(sys, card.id);
    const op = expectSucceeded(await charge(sys, merchantKey, { qr, amount: '299.00' }));
    expect(op.result).to.include({ raw_amount: '299.00', discount_rate: '1.000', final_amount: '299.00', points_earned: 299 });
    expect(op.result!.card.level).to.equal(0);
    expect(await getCard(sys, card.id)).to.include({ balance: '701.00', points: 299, level: 0 });
    await expectLedgersMatch(sys, card.id, { balance: 70_100, points: 299 });
  });

  it('a charge that crosses a level threshold applies the level before the payment and raises the level after', async () => {
    const member = await createMember(sys);
    const card = await issueCard(sys, { type: 'prepaid', ownerMemberId: member.id });
    await rechargeOk(sys, card.id, '2000.00');
    await adjustPointsOk(sys, card.id, 999);
    const qr = await issueQr(sys, card.id);
    const op = expectSucceeded(await charge(sys, merchantKey, { qr, amount: '100.00' }));
    expect(op.result).to.include({ discount_rate: '1.000', final_amount: '100.00', points_earned: 100 });
    expect(op.result!.card.level).to.equal(1);
    expect(await getCard(sys, card.id)).to.include({ points: 1099, level: 1, discount_rate: '0.950', balance: '1900.00' });
  });

  it('standard card: payment_method is required, it earns points and moves no balance', async () => {
    const { member, token, standardCard } = await memberWithToken(sys);
    expect(standardCard.type).to.equal('standard');

    const qr = await issueQr(sys, standardCard.id, token);
    expectFailed(await charge(sys, merchantKey, { qr, amount: '150.00' }), 'PAYMENT_METHOD_REQUIRED');
    // A failed charge does not consume the QR: the same code pays once the method is given.
    const op = expectSucceeded(await charge(sys, merchantKey, { qr, amount: '150.00', payment_method: 'line_pay' }));
    expect(op.result).to.include({ raw_amount: '150.00', final_amount: '150.00', discount_rate: '1.000', points_earned: 150, payment_method: 'line_pay' });
    const card = await expectLedgersMatch(sys, standardCard.id, { balance: 0, points: 150 });
    expect(card.balance_minor).to.equal(0);
    const [tx] = await transactionsOf(sys, op.id);
    expect(tx).to.include({ via_balance: false, payment_method: 'line_pay', member_id: member.id });
    expect(await sys.deps.db('balance_ledger').where({ card_id: standardCard.id })).to.have.length(0);
  });

  it('corporate card uses its fixed_discount and earns no points, even with level points elsewhere', async () => {
    const member = await createMember(sys);
    const card = await issueCard(sys, { type: 'corporate', ownerMemberId: member.id, fixedDiscount: '0.880' });
    expect(card).to.include({ type: 'corporate', fixed_discount: '0.880', discount_rate: '0.880' });
    await rechargeOk(sys, card.id, '500.00');
    const qr = await issueQr(sys, card.id);
    const op = expectSucceeded(await charge(sys, merchantKey, { qr, amount: '123.45' }));
    // 123.45 × 0.880 = 108.636 → 108.64
    expect(op.result).to.include({ raw_amount: '123.45', discount_rate: '0.880', final_amount: '108.64', points_earned: 0 });
    await expectLedgersMatch(sys, card.id, { balance: 50_000 - 10_864, points: 0 });
    expect(await sys.deps.db('point_ledger').where({ card_id: card.id })).to.have.length(0);
  });

  it('voucher: pays its face value once; the card becomes used and a second charge is refused', async () => {
    const sysV = await startSystem({ QR_SINGLE_USE: false });
    try {
      const m = await createMerchant(sysV);
      const member = await createMember(sysV);
      const voucher = await issueCard(sysV, { type: 'voucher', ownerMemberId: member.id, faceValue: '300.00' });
      expect(voucher).to.include({ type: 'voucher', balance: '300.00', face_value: '300.00', discount_rate: '1.000' });
      const qr = await issueQr(sysV, voucher.id);
      const first = expectSucceeded(await charge(sysV, m.key, { qr, amount: '250.00' }));
      expect(first.result).to.include({ final_amount: '250.00', discount_rate: '1.000', points_earned: 0 });
      expect((await cardRow(sysV, voucher.id)).status).to.equal('used');
      // With QR_SINGLE_USE=false the same QR is still live: the card's state is what refuses.
      expectFailed(await charge(sysV, m.key, { qr, amount: '10.00' }), 'VOUCHER_ALREADY_USED');
      await expectLedgersMatch(sysV, voucher.id, { balance: 5_000, points: 0 });
    } finally {
      await sysV.stop();
    }
  });

  it('voucher with single-use QRs: the used QR is invalid and no new QR is issued for a used voucher', async () => {
    const member = await createMember(sys);
    const voucher = await issueCard(sys, { type: 'voucher', ownerMemberId: member.id, faceValue: '100.00' });
    const qr = await issueQr(sys, voucher.id);
    expectSucceeded(await charge(sys, merchantKey, { qr, amount: '100.00' }));
    expectFailed(await charge(sys, merchantKey, { qr, amount: '1.00' }), 'QR_EXPIRED_OR_INVALID');
    const again = await sys.http.post(`/v1/cards/${voucher.id}/qr`, {}, { key: sys.adminKey });
    expect(again.status, again.text).to.equal(422);
    expect(['VOUCHER_ALREADY_USED', 'CARD_NOT_ACTIVE']).to.include(again.body.error.code);
    await expectLedgersMatch(sys, voucher.id, { balance: 0, points: 0 });
  });

  it('without Prefer, POST answers 202 queued and polling GET /v1/operations/:id reaches the terminal state', async () => {
    const member = await createMember(sys);
    const card = await issueCard(sys, { type: 'prepaid', ownerMemberId: member.id });
    const rch = await recharge(sys, card.id, { amount: 80 }, { wait: false });
    expect(rch.status).to.equal(202);
    expect(['queued', 'processing', 'succeeded']).to.include(rch.body.status);
    expect(rch.headers.get('preference-applied')).to.equal(null);
    expect((await pollOperation(sys, rch.body.id, sys.adminKey)).status).to.equal('succeeded');

    const qr = await issueQr(sys, card.id);
    const res = await charge(sys, merchantKey, { qr, amount: '50.00' }, { wait: false });
    expect(res.status).to.equal(202);
    expect(res.body).to.include({ type: 'payment' });
    expect(res.body.completed_at === null || res.body.status === 'succeeded').to.equal(true);
    const done = await pollOperation(sys, res.body.id, merchantKey);
    expect(done.status).to.equal('succeeded');
    expect(done.result).to.include({ final_amount: '50.00' });
    // GET with Prefer: wait on a terminal operation answers at once with the same state.
    const again = await sys.http.get(`/v1/operations/${res.body.id}`, { key: merchantKey, headers: { prefer: 'wait=5' } });
    expect(again.status).to.equal(200);
    expect(again.body).to.deep.equal(done);
    // Another merchant cannot read it.
    const other = await createMerchant(sys);
    expectError(await sys.http.get(`/v1/operations/${res.body.id}`, { key: other.key }), 404, 'NOT_FOUND');
    await expectLedgersMatch(sys, card.id, { balance: 3_000, points: 50 });
  });

  it('Prefer: wait is capped at MAX_WAIT_S (30)', async () => {
    const member = await createMember(sys);
    const card = await issueCard(sys, { type: 'prepaid', ownerMemberId: member.id });
    const res = await recharge(sys, card.id, { amount: '1.00' }, { wait: 999 });
    expect(res.headers.get('preference-applied')).to.equal('wait=30');
    expectSucceeded(res);
  });

  describe('QR codes', () => {
    it('validate never consumes; a QR is single use after a success; revoke makes a QR invalid', async () => {
      const { member, token } = await memberWithToken(sys);
      const card = await issueCard(sys, { type: 'prepaid', ownerMemberId: member.id });
      await rechargeOk(sys, card.id, '100.00');
      const qr = await issueQr(sys, card.id, token, { ttl_seconds: 600 });

      for (let i = 0; i < 3; i++) {
        const v = await sys.http.post('/v1/qr/validate', { qr }, { key: merchantKey });
        expect(v.status, v.text).to.equal(200);
        expect(v.body.valid).to.equal(true);
        expect(v.body.card).to.deep.equal({ masked: `${card.card_no.slice(0, 4)}********${card.card_no.slice(-4)}`, type: 'prepaid', level: 0, discount_rate: '1.000' });
        expect(Date.parse(v.body.expires_at) - Date.now()).to.be.within(500_000, 610_000);
      }
      const unknown = await sys.http.post('/v1/qr/validate', { qr: 'mpsq_not-a-real-token' }, { key: merchantKey });
      expect(unknown.status).to.equal(200);
      expect(unknown.body).to.deep.equal({ valid: false, reason: 'unknown', expires_at: null, card: null });

      expectSucceeded(await charge(sys, merchantKey, { qr, amount: '10.00' }));
      const used = await sys.http.post('/v1/qr/validate', { qr }, { key: merchantKey });
      expect(used.body.valid).to.equal(false);
      expectFailed(await charge(sys, merchantKey, { qr, amount: '10.00' }), 'QR_EXPIRED_OR_INVALID');
      const history = await sys.deps.db('card_qr_history').where({ card_id: card.id }).first();
      expect(history).to.include({ end_reason: 'used' });
      expect(history.used_at).to.be.instanceOf(Date);

      const qr2 = await issueQr(sys, card.id, token);
      expect((await sys.http.post('/v1/qr/validate', { qr: qr2 }, { key: merchantKey })).body.valid).to.equal(true);
      const revoke = await sys.http.delete(`/v1/cards/${card.id}/qr`, { key: token });
      expect(revoke.status, revoke.text).to.equal(200);
      expect(revoke.body.revoked).to.equal(1);
      expect((await sys.http.post('/v1/qr/validate', { qr: qr2 }, { key: merchantKey })).body.valid).to.equal(false);
      expectFailed(await charge(sys, merchantKey, { qr: qr2, amount: '10.00' }), 'QR_EXPIRED_OR_INVALID');
      await expectLedgersMatch(sys, card.id, { balance: 9_000, points: 10 });
    });

    it('rotating replaces the member’s previous QR', async () => {
      const { member, token } = await memberWithToken(sys);
      const card = await issueCard(sys, { type: 'prepaid', ownerMemberId: member.id });
      await rechargeOk(sys, card.id, '100.00');
      const first = await issueQr(sys, card.id, token);
      const second = await issueQr(sys, card.id, token);
      expect(second).to.not.equal(first);
      expect((await sys.http.post('/v1/qr/validate', { qr: first }, { key: merchantKey })).body.valid).to.equal(false);
      expectFailed(await charge(sys, merchantKey, { qr: first, amount: '5.00' }), 'QR_EXPIRED_OR_INVALID');
      expectSucceeded(await charge(sys, merchantKey, { qr: second, amount: '5.00' }));
    });

    it('issues racing for one member are each answered: one QR stays live, every other one is superseded', async () => {
      const { member, token } = await memberWithToken(sys);
      const card = await issueCard(sys, { type: 'prepaid', ownerMemberId: member.id });
      await rechargeOk(sys, card.id, '100.00');
      const first = await issueQr(sys, card.id, token);
      const racing = await Promise.all(Array.from({ length: 6 }, () => issueQr(sys, card.id, token)));
      const checks = await Promise.all([first, ...racing].map(async (qr) => (await sys.http.post('/v1/qr/validate', { qr }, { key: merchantKey })).body));
      expect(checks.filter((c) => c.valid)).to.have.length(1);
      expect(checks.filter((c) => !c.valid).map((c) => c.reason)).to.deep.equal(Array(6).fill('superseded'));
      expect(await sys.deps.db('card_qr_state').where({ card_id: card.id, member_id: member.id })).to.have.length(1);
      expect(await sys.deps.db('card_qr_history').where({ card_id: card.id, end_reason: null })).to.have.length(1);
      expect(await sys.deps.db('card_qr_history').where({ card_id: card.id, end_reason: 'rotated' })).to.have.length(6);
    });

    it('a viewer cannot get a QR (403); a bound member can, and pays with the shared card', async () => {
      const owner = await createMember(sys);
      const card = await issueCard(sys, { type: 'prepaid', ownerMemberId: owner.id });
      await rechargeOk(sys, card.id, '100.00');
      const viewer = await createMember(sys);
      const viewerToken = await memberToken(sys, viewer.id);
      await bind(sys, { key: viewerToken, cardNo: card.card_no, role: 'viewer' });
      expectError(await sys.http.post(`/v1/cards/${card.id}/qr`, {}, { key: viewerToken }), 403, 'FORBIDDEN');
      expect(await sys.deps.db('card_qr_state').where({ card_id: card.id })).to.have.length(0);

      const family = await createMember(sys, { name: '李大華' });
      const familyToken = await memberToken(sys, family.id);
      await bind(sys, { key: familyToken, cardNo: card.card_no });
      const qr = await issueQr(sys, card.id, familyToken);
      const op = expectSucceeded(await charge(sys, merchantKey, { qr, amount: '20.00' }));
      expect(op.result!.member.name).to.equal('李**');
      const [tx] = await transactionsOf(sys, op.id);
      expect(tx.member_id).to.equal(family.id);
    });

    it('a frozen card gets no QR (422 CARD_NOT_ACTIVE); freezing ends the QR it had, so its charge fails', async () => {
      const member = await createMember(sys);
      const card = await issueCard(sys, { type: 'prepaid', ownerMemberId: member.id });
      await rechargeOk(sys, card.id, '100.00');
      const qr = await issueQr(sys, card.id);
      expect((await sys.http.post(`/v1/cards/${card.id}/freeze`, { reason: 'lost' }, { key: sys.adminKey })).status).to.equal(200);
      expectError(await sys.http.post(`/v1/cards/${card.id}/qr`, {}, { key: sys.adminKey }), 422, 'CARD_NOT_ACTIVE');
      expect((await sys.http.post('/v1/qr/validate', { qr }, { key: merchantKey })).body).to.include({ valid: false, reason: 'revoked' });
      expectFailed(await charge(sys, merchantKey, { qr, amount: '10.00' }), 'QR_EXPIRED_OR_INVALID');
      expect((await sys.http.post(`/v1/cards/${card.id}/unfreeze`, {}, { key: sys.adminKey })).status).to.equal(200);
      expectFailed(await charge(sys, merchantKey, { qr, amount: '10.00' }), 'QR_EXPIRED_OR_INVALID');
      await expectLedgersMatch(sys, card.id, { balance: 10_000, points: 0 });
    });

    it('POST /v1/qr/validate says why a QR cannot pay: unknown, superseded, used, expired, card_not_active, card_expired', async () => {
      const reasonOf = async (qr: string) => {
        const res = await sys.http.post('/v1/qr/validate', { qr }, { key: merchantKey });
        expect(res.status, res.text).to.equal(200);
        return res.body.valid ? 'valid' : res.body.reason;
      };
      const member = await createMember(sys);
      const card = await issueCard(sys, { type: 'prepaid', ownerMemberId: member.id });
      await rechargeOk(sys, card.id, '100.00');
      expect(await reasonOf(`mpsq_${'A'.repeat(43)}`)).to.equal('unknown');
      const first = await issueQr(sys, card.id);
      expect(await reasonOf(first)).to.equal('valid');
      const second = await issueQr(sys, card.id);
      expect(await reasonOf(first)).to.equal('superseded');
      expectSucceeded(await charge(sys, merchantKey, { qr: second, amount: '1.00' }));
      expect(await reasonOf(second)).to.equal('used');
      const third = await issueQr(sys, card.id);
      await sys.deps.db('card_qr_state').where({ card_id: card.id }).update({ expires_at: sys.deps.db.raw(`now() - interval '1 second'`) });
      expect(await reasonOf(third)).to.equal('expired');
      const fourth = await issueQr(sys, card.id);
      await sys.deps.db('member_cards').where({ id: card.id }).update({ status: 'frozen' });
      expect(await reasonOf(fourth)).to.equal('card_not_active');
      await sys.deps.db('member_cards').where({ id: card.id }).update({ status: 'active', expires_at: sys.deps.db.raw(`now() - interval '1 second'`) });
      expect(await reasonOf(fourth)).to.equal('card_expired');
    });
  });

  it('the operation id and the idempotent replay are stable across GET and POST', async () => {
    const member = await createMember(sys);
    const card = await issueCard(sys, { type: 'prepaid', ownerMemberId: member.id });
    const key = newKey();
    const first = expectSucceeded(await recharge(sys, card.id, { amount: '10.00' }, { idempotencyKey: key }));
    const replay = await recharge(sys, card.id, { amount: '10.00' }, { idempotencyKey: key });
    expect(replay.status).to.equal(200);
    expect(replay.body).to.deep.equal(first);
    const read = await sys.http.get(`/v1/operations/${first.id}`, { key: sys.adminKey });
    expect(read.body).to.deep.equal(first);
  });
});
