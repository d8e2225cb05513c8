import { randomBytes } from 'node:crypto';
import { expect } from 'chai';
import { bind, countRows, createAppKey, createMember, createMerchant, issueCard, memberToken, memberWithToken } from '../helpers/fixtures.js';
import { charge, chargeOk, expectError, expectFailed, expectLedgersMatch, expectSucceeded, outboxEventsOf, getCard, issueQr, newKey, rechargeOk, refund, type OperationJson } from '../helpers/money.js';
import { tillRecharge } from '../helpers/operator-money.js';
import { startSystem, type TestSystem } from '../helpers/system.js';
import { startWorkers } from '../../workers/main.js';

/** POST /v1/recharges: a merchant tops up a member's card at the till with its QR (API.md "Operator money tools"). */
describe('e2e: till top-ups (POST /v1/recharges)', function () {
  this.timeout(60_000);
  let sys: TestSystem;
  let shop: Awaited<ReturnType<typeof createMerchant>>;

  before(async () => {
    sys = await startSystem({ SETTLEMENT_TZ: 'Asia/Taipei', MAX_BALANCE: 10_000_000 });
    shop = await createMerchant(sys, { fee_rate: '0.0100' });
  });
  after(async () => {
    await sys.stop();
  });

  async function prepaid(balance?: string) {
    const member = await createMember(sys);
    const card = await issueCard(sys, { type: 'prepaid', ownerMemberId: member.id });
    if (balance) await rechargeOk(sys, card.id, balance);
    return { member, card };
  }

  it('credits the card of the QR: a recharge with the merchant on the operation and the transaction, the card masked, the QR still good for a payment', async () => {
    const { member, card } = await prepaid('10.00');
    const qr = await issueQr(sys, card.id);
    const op = expectSucceeded(await tillRecharge(sys, shop.key, { qr, amount: '500.00', payment_method: 'cash', tag: { till: 3 } }), 'till top-up');
    expect(op.type).to.equal('recharge');
    expect(op.result).to.deep.include({ amount: '500.00', balance: '510.00', payment_method: 'cash' });
    expect(op.result!.tx_no).to.match(/^RCH\d{21}$/);
    expect(op.result!.card).to.deep.equal({ card_no: `${card.card_no.slice(0, 4)}********${card.card_no.slice(-4)}`, type: 'prepaid', level: 0 });
    expect(op.result).to.not.have.property('card_id');

    const row = await sys.deps.db('operations').where({ id: op.id }).first();
    expect(row).to.include({ type: 'recharge', merchant_id: shop.merchant.id, card_id: card.id, member_id: member.id, actor_role: 'merchant', payment_method: 'cash' });
    const [tx] = await sys.deps.db('transactions').where({ operation_id: op.id });
    expect(tx).to.include({ type: 'recharge', merchant_id: shop.merchant.id, card_id: card.id, member_id: member.id, payment_method: 'cash', via_balance: true });
    expect(Number(tx.final_amount_minor)).to.equal(50_000);
    expect(tx.tag).to.deep.equal({ till: 3 });
    const [ledger] = await sys.deps.db('balance_ledger').where({ transaction_id: tx.id });
    expect(ledger).to.include({ reason: 'recharge' });
    await expectLedgersMatch(sys, card.id, { balance: 51_000, points: 0 });

    // The merchant hears of it (recharge.succeeded in its outbox), and lists it among its transactions.
    const [event] = await sys.deps.db('events').where({ merchant_id: shop.merchant.id, type: 'recharge.succeeded' }).whereRaw(`data->>'operation_id' = ?`, [op.id]);
    expect(event.data).to.deep.include({ tx_no: op.result!.tx_no, amount: '500.00', payment_method: 'cash' });
    const listed = await sys.http.get(`/v1/merchant/transactions?type=recharge`, { key: shop.key });
    expect(listed.status, listed.text).to.equal(200);
    expect(listed.body.data.map((t: { tx_no: string }) => t.tx_no)).to.include(op.result!.tx_no);

    // A top-up does not consume the QR: the member pays with it right after.
    const pay = expectSucceeded(await charge(sys, shop.key, { qr, amount: '100.00' }));
    expect(pay.result).to.include({ final_amount: '100.00' });
    await expectLedgersMatch(sys, card.id, { balance: 41_000, points: 100 });
  });

  it('a bound member’s QR tops up the shared card; the same Idempotency-Key and body give the same operation, credited once', async () => {
    const { card } = await prepaid();
    const other = await createMember(sys, { name: '家人' });
    const token = await memberToken(sys, other.id);
    await bind(sys, { key: token, cardNo: card.card_no });
    const qr = await issueQr(sys, card.id, token);
    const key = newKey('till');
    const first = expectSucceeded(await tillRecharge(sys, shop.key, { qr, amount: 200, payment_method: 'credit_card' }, { idempotencyKey: key }));
    const again = expectSucceeded(await tillRecharge(sys, shop.key, { qr, amount: '200.00', payment_method: 'credit_card' }, { idempotencyKey: key }));
    expect(again.id).to.equal(first.id);
    expectError(await tillRecharge(sys, shop.key, { qr, amount: '201.00', payment_method: 'credit_card' }, { idempotencyKey: key }), 409, 'IDEMPOTENCY_KEY_REUSED');
    const [tx] = await sys.deps.db('transactions').where({ operation_id: first.id });
    expect(tx.member_id).to.equal(other.id);
    expect(await countRows(sys, 'transactions', { card_id: card.id, type: 'recharge' })).to.equal(1);
    await expectLedgersMatch(sys, card.id, { balance: 20_000 });
  });

  it('refusals: an unknown QR, a standard card, MAX_BALANCE, a frozen card; each changes nothing', async () => {
    const unknown = `mpsq_${randomBytes(32).toString('base64url')}`;
    expectFailed(await tillRecharge(sys, shop.key, { qr: unknown, amount: '1.00' }), 'QR_EXPIRED_OR_INVALID');

    const { token, standardCard } = await memberWithToken(sys);
    expectFailed(await tillRecharge(sys, shop.key, { qr: await issueQr(sys, standardCard.id, token), amount: '1.00' }), 'RECHARGE_NOT_ALLOWED');
    await expectLedgersMatch(sys, standardCard.id, { balance: 0 });

    // MAX_BALANCE is 100,000.00 here.
    const { card } = await prepaid('50000.00');
    await rechargeOk(sys, card.id, '49950.00');
    const qr = await issueQr(sys, card.id);
    const over = expectFailed(await tillRecharge(sys, shop.key, { qr, amount: '50.01' }), 'BALANCE_LIMIT_EXCEEDED');
    expect(await sys.deps.db('transactions').where({ operation_id: over.id })).to.have.length(0);
    // The merchant hears of a failed top-up (it took the cash): recharge.failed in its outbox.
    const [event] = await outboxEventsOf(sys, over.id);
    expect(event).to.include({ type: 'recharge.failed', merchant_id: shop.merchant.id });
    expect(event.data).to.deep.include({ amount: '50.01', error: { code: 'BALANCE_LIMIT_EXCEEDED', message: event.data.error.message } });
    expectSucceeded(await tillRecharge(sys, shop.key, { qr, amount: '50.00' }));
    await expectLedgersMatch(sys, card.id, { balance: 10_000_000 });

    const frozen = await prepaid('1.00');
    const frozenQr = await issueQr(sys, frozen.card.id);
    expect((await sys.http.post(`/v1/cards/${frozen.card.id}/freeze`, {}, { key: sys.adminKey })).status).to.equal(200);
    // Freezing ended the card's QR: it is no longer valid.
    expectFailed(await tillRecharge(sys, shop.key, { qr: frozenQr, amount: '1.00' }), 'QR_EXPIRED_OR_INVALID');
    await expectLedgersMatch(sys, frozen.card.id, { balance: 100 });
  });

  it('who may: merchants only (admin, app and member keys 403); cash or credit_card only; the body is validated (400)', async () => {
    const { member, card } = await prepaid();
    const qr = await issueQr(sys, card.id);
    const opsBefore = await countRows(sys, 'operations', { card_id: card.id });
    expectError(await tillRecharge(sys, sys.adminKey, { qr, amount: '1.00' }), 403, 'FORBIDDEN');
    expectError(await tillRecharge(sys, await createAppKey(sys), { qr, amount: '1.00' }), 403, 'FORBIDDEN');
    expectError(await tillRecharge(sys, await memberToken(sys, member.id), { qr, amount: '1.00' }), 403, 'FORBIDDEN');
    expectError(await tillRecharge(sys, shop.key, { qr, amount: '1.00', payment_method: 'wechat' }), 400, 'VALIDATION_ERROR');
    expectError(await tillRecharge(sys, shop.key, { qr, amount: '1.00', payment_method: 'bank_transfer' }), 400, 'VALIDATION_ERROR');
    expectError(await sys.http.post('/v1/recharges', { qr, amount: '1.00', payment_method: 'cash', card_id: card.id }, { key: shop.key, headers: { 'idempotency-key': newKey() } }), 400, 'VALIDATION_ERROR');
    expectError(await tillRecharge(sys, shop.key, { qr, amount: '50000.01' }), 400, 'AMOUNT_INVALID');
    expectError(await sys.http.post('/v1/recharges', { qr, amount: '1.00', payment_method: 'cash' }, { key: shop.key }), 400, 'IDEMPOTENCY_KEY_REQUIRED');
    expect(await countRows(sys, 'operations', { card_id: card.id })).to.equal(opsBefore);
  });

  it('MERCHANT_SUSPENDED: a suspended merchant’s key is refused 403; a top-up accepted before the suspension fails with it in the worker', async () => {
    const m = await createMerchant(sys);
    const { card } = await prepaid();
    const qr = await issueQr(sys, card.id);
    expect((await sys.http.post(`/v1/merchants/${m.merchant.id}/suspend`, {}, { key: sys.adminKey })).status).to.equal(200);
    expectError(await tillRecharge(sys, m.key, { qr, amount: '1.00' }), 403, 'MERCHANT_SUSPENDED');
    expect(await countRows(sys, 'operations', { merchant_id: m.merchant.id })).to.equal(0);
    expect((await sys.http.post(`/v1/merchants/${m.merchant.id}/reactivate`, {}, { key: sys.adminKey })).status).to.equal(200);

    const idle = await startSystem({}, { workers: false });
    try {
      const queued = await tillRecharge(idle, m.key, { qr, amount: '1.00' }, { wait: false });
      expect(queued.status, queued.text).to.equal(202);
      expect((await idle.http.post(`/v1/merchants/${m.merchant.id}/suspend`, {}, { key: idle.adminKey })).status).to.equal(200);
      const workers = await startWorkers(idle.deps);
      try {
        expectFailed(await idle.http.get<OperationJson>(`/v1/operations/${queued.body.id}`, { key: m.key, headers: { prefer: 'wait=10' } }), 'MERCHANT_SUSPENDED');
      } finally {
        await workers.close();
      }
    } finally {
      await idle.stop();
    }
    expect(await sys.deps.db('transactions').where({ card_id: card.id, type: 'recharge' })).to.have.length(0);
    await expectLedgersMatch(sys, card.id, { balance: 0 });
  });

  it("appears in the merchant's settlement: recharge_amount and recharge_count, net = gross − refunds − fee − recharges (JSON and CSV)", async () => {
    const m = await createMerchant(sys, { fee_rate: '0.0100' });
    const { card } = await prepaid('1000.00');
    const pay = await chargeOk(sys, m.key, card.id, '300.00');
    expectSucceeded(await refund(sys, m.key, { original_tx_no: pay.result!.tx_no, amount: '50.00' }));
    expectSucceeded(await tillRecharge(sys, m.key, { qr: await issueQr(sys, card.id), amount: '120.00', payment_method: 'cash' }));
    expectSucceeded(await tillRecharge(sys, m.key, { qr: await issueQr(sys, card.id), amount: '80.00', payment_method: 'credit_card' }));
    // The day's activity moves to yesterday (local, Asia/Taipei) so that its day has ended and can be settled.
    const { rows } = await sys.deps.db.raw<{ rows: { day: string }[] }>(`SELECT to_char((now() AT TIME ZONE 'Asia/Taipei')::date - 1, 'YYYY-MM-DD') AS day`);
    const day = rows[0]!.day;
    await sys.deps.db('transactions').where({ merchant_id: m.merchant.id }).update({ created_at: sys.deps.db.raw(`(CAST(? AS date) + time '12:00')::timestamp AT TIME ZONE 'Asia/Taipei'`, [day]) });
    // The admin recharge of the card that day is no merchant's.
    await sys.deps.db('transactions').where({ card_id: card.id, type: 'recharge' }).whereNull('merchant_id').update({ created_at: sys.deps.db.raw(`(CAST(? AS date) + time '12:00')::timestamp AT TIME ZONE 'Asia/Taipei'`, [day]) });

    const run = await sys.http.post('/v1/settlements/run', { date: day, merchant_id: m.merchant.id }, { key: sys.adminKey });
    expect(run.status, run.text).to.equal(201);
    // gross 300.00, refunds 50.00, fee round(30000 × 0.01) = 3.00, top-ups 120.00 + 80.00: net = 300 − 50 − 3 − 200 = 47.00.
    const s = run.body.data[0];
    expect(s).to.include({ merchant_id: m.merchant.id, gross_amount: '300.00', refund_amount: '50.00', fee_amount: '3.00', recharge_amount: '200.00', net_amount: '47.00', payment_count: 1, refund_count: 1, recharge_count: 2 });
    const mine = await sys.http.get(`/v1/merchant/settlements/${s.id}`, { key: m.key });
    expect(mine.body).to.include({ recharge_amount: '200.00', recharge_count: 2, net_amount: '47.00' });
    const csv = await sys.http.get(`/v1/merchant/settlements/${s.id}.csv`, { key: m.key });
    const [header, line] = csv.text.trimEnd().split('\n');
    const row = Object.fromEntries(header!.split(',').map((h, i) => [h, line!.split(',')[i]]));
    expect(row).to.include({ recharge_amount: '200.00', recharge_count: '2', net_amount: '47.00' });
    const [event] = await sys.deps.db('events').where({ merchant_id: m.merchant.id, type: 'settlement.generated' });
    expect(event.data).to.include({ recharge_amount: '200.00', recharge_count: 2, net_amount: '47.00' });
    // The card: 1000.00 − 300.00 + 50.00 (refund) + 120.00 + 80.00.
    expect(await getCard(sys, card.id)).to.include({ balance: '950.00' });
    await expectLedgersMatch(sys, card.id, { balance: 95_000 });
  });
});
