import { expect } from 'chai';
import { bind, createAppKey, createMember, createMerchant, issueCard, memberToken, memberWithToken } from '../helpers/fixtures.js';
import { charge, chargeOk, expectError, expectFailed, expectLedgersMatch, expectSucceeded, getCard, issueQr, rechargeOk, refund } from '../helpers/money.js';
import { putLimits, putLimitsOk } from '../helpers/operator-money.js';
import { startSystem, type TestSystem } from '../helpers/system.js';

/**
 * Per-card limits (PUT /v1/cards/:id/limits), judged in the worker under the card lock: a payment
 * from the card's balance over one of them fails LIMIT_EXCEEDED with `details.limit`. Days are
 * local days in SETTLEMENT_TZ (Asia/Taipei, UTC+8, here).
 */
describe('e2e: card limits', function () {
  this.timeout(90_000);
  let sys: TestSystem;
  let shopKey: string;

  before(async () => {
    sys = await startSystem({ SETTLEMENT_TZ: 'Asia/Taipei' });
    shopKey = (await createMerchant(sys)).key;
  });
  after(async () => {
    await sys.stop();
  });

  async function prepaid(balance = '1000.00') {
    const member = await createMember(sys);
    const card = await issueCard(sys, { type: 'prepaid', ownerMemberId: member.id });
    await rechargeOk(sys, card.id, balance);
    return { member, card };
  }
  const pay = async (cardId: string, amount: string) => charge(sys, shopKey, { qr: await issueQr(sys, cardId), amount });

  it('sets and shows the limits: the card’s own, else the platform’s (none here); null goes back to the default; absent fields stay', async () => {
    const { card } = await prepaid();
    expect((await getCard(sys, card.id)) as unknown as { limits: unknown }).to.deep.include({
      limits: { single_payment_limit: null, daily_spend_limit: null, daily_payment_count: null, source: { single_payment_limit: 'platform', daily_spend_limit: 'platform', daily_payment_count: 'platform' }, time_zone: 'Asia/Taipei' },
    });
    const set = await putLimitsOk(sys, card.id, { single_payment_limit: '500.00', daily_spend_limit: 800, daily_payment_count: 3 });
    expect(set).to.deep.equal({
      card_id: card.id,
      single_payment_limit: '500.00',
      daily_spend_limit: '800.00',
      daily_payment_count: 3,
      source: { single_payment_limit: 'card', daily_spend_limit: 'card', daily_payment_count: 'card' },
      time_zone: 'Asia/Taipei',
    });
    const changed = await putLimitsOk(sys, card.id, { daily_spend_limit: null });
    expect(changed).to.include({ single_payment_limit: '500.00', daily_spend_limit: null, daily_payment_count: 3 });
    expect(changed.source.daily_spend_limit).to.equal('platform');
    const row = await sys.deps.db('member_cards').where({ id: card.id }).first();
    expect([row.single_payment_limit_minor, row.daily_spend_limit_minor, row.daily_payment_count].map((v) => (v === null ? null : Number(v)))).to.deep.equal([50_000, null, 3]);
    const audit = await sys.deps.db('audit_events').where({ action: 'card.limits', object_id: card.id }).orderBy('id');
    expect(audit).to.have.length(2);
    expect(audit[1].context).to.deep.equal({
      before: { single_payment_limit: 50_000, daily_spend_limit: 80_000, daily_payment_count: 3 },
      after: { single_payment_limit: 50_000, daily_spend_limit: null, daily_payment_count: 3 },
    });
  });

  it('who may: admin, app, the owner; not a bound member (403), another member (404), a merchant (403); standard cards have none (422); the body is validated', async () => {
    const { member, card } = await prepaid();
    const ownerToken = await memberToken(sys, member.id);
    expect((await putLimits(sys, card.id, { daily_payment_count: 5 }, ownerToken)).status).to.equal(200);
    expect((await putLimits(sys, card.id, { daily_payment_count: 6 }, await createAppKey(sys))).status).to.equal(200);
    const family = await memberToken(sys, (await createMember(sys)).id);
    await bind(sys, { key: family, cardNo: card.card_no });
    expectError(await putLimits(sys, card.id, { daily_payment_count: 1 }, family), 403, 'FORBIDDEN');
    expectError(await putLimits(sys, card.id, { daily_payment_count: 1 }, await memberToken(sys, (await createMember(sys)).id)), 404, 'NOT_FOUND');
    expectError(await putLimits(sys, card.id, { daily_payment_count: 1 }, shopKey), 403, 'FORBIDDEN');
    const { standardCard } = await memberWithToken(sys);
    expectError(await putLimits(sys, standardCard.id, { daily_payment_count: 1 }), 422, 'UNPROCESSABLE');
    expectError(await putLimits(sys, card.id, {}), 400, 'VALIDATION_ERROR');
    expectError(await putLimits(sys, card.id, { daily_payment_count: 0 }), 400, 'VALIDATION_ERROR');
    expectError(await putLimits(sys, card.id, { daily_payment_count: 1.5 }), 400, 'VALIDATION_ERROR');
    expectError(await putLimits(sys, card.id, { weekly_limit: 1 }), 400, 'VALIDATION_ERROR');
    for (const bad of ['0', '-5.00', '1.234', '1e3', 0.001]) expectError(await putLimits(sys, card.id, { single_payment_limit: bad }), 400, 'AMOUNT_INVALID');
    // A JSON number is judged on its own characters, like every amount: 1e3 is not an amount.
    const raw = await sys.http.request('PUT', `/v1/cards/${card.id}/limits`, undefined, { key: sys.adminKey, raw: '{"daily_spend_limit": 1e3}', headers: { 'content-type': 'application/json' } });
    expectError(raw, 400, 'AMOUNT_INVALID');
    expectError(await putLimits(sys, '00000000-0000-4000-8000-000000000000', { daily_payment_count: 1 }), 404, 'NOT_FOUND');
    expect((await sys.deps.db('member_cards').where({ id: card.id }).first()).daily_payment_count).to.equal(6);
  });

  it('single_payment_limit at the boundary: exactly the limit (after the discount) pays, a cent more is LIMIT_EXCEEDED naming it', async () => {
    const { card } = await prepaid();
    await putLimitsOk(sys, card.id, { single_payment_limit: '100.00' });
    expectSucceeded(await pay(card.id, '100.00'));
    const over = expectFailed(await pay(card.id, '100.01'), 'LIMIT_EXCEEDED');
    const row = await sys.deps.db('operations').where({ id: over.id }).first();
    expect(row.error_message).to.contain('100.00');
    expect(await sys.deps.db('transactions').where({ operation_id: over.id })).to.have.length(0);
    await expectLedgersMatch(sys, card.id, { balance: 90_000, points: 100 });
  });

  it('the refusal carries details.limit in the failure event the merchant receives', async () => {
    const m = await createMerchant(sys);
    const { card } = await prepaid();
    await putLimitsOk(sys, card.id, { single_payment_limit: '10.00' });
    const op = expectFailed(await charge(sys, m.key, { qr: await issueQr(sys, card.id), amount: '10.01' }), 'LIMIT_EXCEEDED');
    const [event] = await sys.deps.db('events').where({ merchant_id: m.merchant.id, type: 'payment.failed' }).whereRaw(`data->>'operation_id' = ?`, [op.id]);
    expect(event.data.error.code).to.equal('LIMIT_EXCEEDED');
  });

  it('daily_spend_limit and daily_payment_count at the boundary; a refund gives back money, not the day’s allowance', async () => {
    const { card } = await prepaid();
    await putLimitsOk(sys, card.id, { daily_spend_limit: '100.00', daily_payment_count: 3 });
    const first = expectSucceeded(await pay(card.id, '60.00'));
    expectFailed(await pay(card.id, '40.01'), 'LIMIT_EXCEEDED');
    expectSucceeded(await pay(card.id, '40.00')); // exactly 100.00 today
    expectSucceeded(await refund(sys, shopKey, { original_tx_no: first.result!.tx_no, amount: '60.00' }));
    // Refunded, but spent today is still 100.00: the refund does not reset the day.
    expectFailed(await pay(card.id, '0.01'), 'LIMIT_EXCEEDED');
    await putLimitsOk(sys, card.id, { daily_spend_limit: null });
    expectSucceeded(await pay(card.id, '1.00')); // the third payment of the day
    const fourth = expectFailed(await pay(card.id, '1.00'), 'LIMIT_EXCEEDED');
    const { rows } = await sys.deps.db.raw(`SELECT error_code FROM operations WHERE id = ?`, [fourth.id]);
    expect(rows[0].error_code).to.equal('LIMIT_EXCEEDED');
    await expectLedgersMatch(sys, card.id, { balance: 100_000 - 6_000 - 4_000 + 6_000 - 100 });
  });

  it('the day is the local day of SETTLEMENT_TZ: payments before local midnight do not count, from local midnight on they do', async () => {
    const { card } = await prepaid();
    await putLimitsOk(sys, card.id, { daily_payment_count: 1, daily_spend_limit: '50.00' });
    const first = expectSucceeded(await pay(card.id, '50.00'));
    expectFailed(await pay(card.id, '1.00'), 'LIMIT_EXCEEDED');
    const startOfDay = `date_trunc('day', now() AT TIME ZONE 'Asia/Taipei') AT TIME ZONE 'Asia/Taipei'`;
    // The first payment moved to the last microsecond of yesterday (local): today is empty.
    await sys.deps.db('transactions').where({ operation_id: first.id }).update({ created_at: sys.deps.db.raw(`${startOfDay} - interval '1 microsecond'`) });
    const second = expectSucceeded(await pay(card.id, '50.00'));
    // Both at exactly local midnight: today's, so the day is full again.
    await sys.deps.db('transactions').whereIn('operation_id', [first.id, second.id]).update({ created_at: sys.deps.db.raw(startOfDay) });
    const refused = expectFailed(await pay(card.id, '0.01'), 'LIMIT_EXCEEDED');
    expect((await sys.deps.db('operations').where({ id: refused.id }).first()).error_message).to.match(/payments a day|a day/);
    // A UTC day would be different: 16:00Z is local midnight here.
    const { rows } = await sys.deps.db.raw<{ rows: { h: number }[] }>(`SELECT extract(hour FROM (${startOfDay}) AT TIME ZONE 'UTC')::int AS h`);
    expect(rows[0]!.h).to.equal(16);
    await expectLedgersMatch(sys, card.id, { balance: 90_000, points: 100 });
  });

  it('limits are not for standard cards: a cash payment with one is never LIMIT_EXCEEDED', async () => {
    const platform = await startSystem({ CARD_SINGLE_PAYMENT_LIMIT: 1_000, CARD_DAILY_PAYMENT_COUNT: 1 });
    try {
      const shop = await createMerchant(platform);
      const { token, standardCard } = await memberWithToken(platform);
      await chargeOk(platform, shop.key, standardCard.id, '50.00', { payment_method: 'cash', qrKey: token });
      await chargeOk(platform, shop.key, standardCard.id, '50.00', { payment_method: 'cash', qrKey: token });
    } finally {
      await platform.stop();
    }
  });

  it('platform defaults (CARD_* settings) apply where the card has none; an owner may tighten but not lift them, an admin may', async () => {
    const platform = await startSystem({ CARD_SINGLE_PAYMENT_LIMIT: 20_000, CARD_DAILY_SPEND_LIMIT: 30_000, CARD_DAILY_PAYMENT_COUNT: 2, SETTLEMENT_TZ: 'Asia/Taipei' });
    try {
      const shop = await createMerchant(platform);
      const member = await createMember(platform);
      const card = await issueCard(platform, { type: 'prepaid', ownerMemberId: member.id });
      await rechargeOk(platform, card.id, '1000.00');
      const platformPay = async (amount: string) => charge(platform, shop.key, { qr: await issueQr(platform, card.id), amount });
      expect(((await getCard(platform, card.id)) as unknown as { limits: Record<string, unknown> }).limits).to.include({ single_payment_limit: '200.00', daily_spend_limit: '300.00', daily_payment_count: 2 });
      const single = expectFailed(await platformPay('200.01'), 'LIMIT_EXCEEDED');
      expect(single.error!.message).to.contain('200.00');
      expectSucceeded(await platformPay('200.00'));
      expectFailed(await platformPay('100.01'), 'LIMIT_EXCEEDED'); // daily spend
      expectSucceeded(await platformPay('100.00'));
      expectFailed(await platformPay('0.01'), 'LIMIT_EXCEEDED');

      const owner = await memberToken(platform, member.id);
      expectError(await putLimits(platform, card.id, { daily_payment_count: 3 }, owner), 403, 'FORBIDDEN');
      expectError(await putLimits(platform, card.id, { single_payment_limit: '200.01' }, owner), 403, 'FORBIDDEN');
      expect((await putLimits(platform, card.id, { single_payment_limit: '50.00', daily_payment_count: 2 }, owner)).status).to.equal(200);
      // An admin lifts them for this card.
      await putLimitsOk(platform, card.id, { daily_spend_limit: '1000.00', daily_payment_count: 10 });
      expectFailed(await platformPay('50.01'), 'LIMIT_EXCEEDED');
      expectSucceeded(await platformPay('50.00'));
      await expectLedgersMatch(platform, card.id, { balance: 100_000 - 20_000 - 10_000 - 5_000 });
    } finally {
      await platform.stop();
    }
  });
});
