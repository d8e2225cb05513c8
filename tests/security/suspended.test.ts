import { expect } from 'chai';
import { countRows, createMember, createMerchant, memberWithToken } from '../helpers/fixtures.js';
import { charge, chargeOk, expectSucceeded, issueQr, refund } from '../helpers/money.js';
import { startSystem, type TestSystem } from '../helpers/system.js';
import { startReceiver, waitFor, type TestReceiver } from '../helpers/webhook-receiver.js';
import { expectCode, startRelayLoop } from './helpers.js';

/**
 * Finding: suspension did not stop a merchant's keys (only charges were refused, inside the
 * operation) nor a member's tokens. API.md "Security rules": a suspended merchant's keys get
 * 403 MERCHANT_SUSPENDED on every write, reads of its own history stay; a suspended member's
 * tokens get 403 MEMBER_SUSPENDED.
 */

describe('security: suspended merchant', function () {
  this.timeout(60_000);
  let sys: TestSystem;
  let relay: ReturnType<typeof startRelayLoop>;
  let receiver: TestReceiver;

  before(async () => {
    sys = await startSystem({ WEBHOOK_ALLOW_INSECURE: true, CARD_PARTITIONS: 2 });
    relay = startRelayLoop(sys);
    receiver = await startReceiver(200);
  });
  after(async () => {
    await relay?.stop();
    await receiver?.close();
    await sys?.stop();
  });

  it('every write of its key is 403 MERCHANT_SUSPENDED and changes nothing; its history stays readable; reactivation restores writes', async () => {
    const { merchant, key } = await createMerchant(sys);
    const member = await createMember(sys);
    const cardId = member.cards[0]!.id;

    // Before: an endpoint, a payment, its delivery.
    const ep = await sys.http.post('/v1/merchant/webhook-endpoints', { url: receiver.url, events: ['payment.succeeded', 'refund.succeeded'] }, { key });
    expect(ep.status, ep.text).to.equal(201);
    const payment = await chargeOk(sys, key, cardId, '80.00', { payment_method: 'cash' });
    const txNo = payment.result!.tx_no as string;
    const delivery = await waitFor('the payment delivery', async () => {
      const res = await sys.http.get(`/v1/merchant/webhook-deliveries?endpoint_id=${ep.body.id}`, { key });
      return res.body.data?.find((d: any) => d.status === 'delivered');
    });
    const receivedBefore = receiver.requests.length;

    const suspend = await sys.http.post(`/v1/merchants/${merchant.id}/suspend`, {}, { key: sys.adminKey });
    expect(suspend.status, suspend.text).to.equal(200);

    const snapshot = async () => ({
      operations: await countRows(sys, 'operations', { merchant_id: merchant.id }),
      transactions: await countRows(sys, 'transactions', { merchant_id: merchant.id }),
      endpoints: await sys.deps.db('webhook_endpoints').where({ merchant_id: merchant.id }).orderBy('id').select('id', 'secret_enc', 'status'),
      deliveries: await sys.deps.db('webhook_deliveries').where({ endpoint_id: ep.body.id }).orderBy('id').select('id', 'attempts', 'status'),
    });
    const before = await snapshot();

    const qr = await issueQr(sys, cardId);
    const writes: [string, () => Promise<any>][] = [
      ['POST /v1/payments', () => charge(sys, key, { qr, amount: '10.00', payment_method: 'cash' })],
      ['POST /v1/refunds', () => refund(sys, key, { original_tx_no: txNo, amount: '5.00' })],
      ['POST /v1/merchant/webhook-endpoints', () => sys.http.post('/v1/merchant/webhook-endpoints', { url: receiver.url, events: ['payment.succeeded'] }, { key })],
      ['POST …/rotate-secret', () => sys.http.post(`/v1/merchant/webhook-endpoints/${ep.body.id}/rotate-secret`, {}, { key })],
      ['POST …/redeliver', () => sys.http.post(`/v1/merchant/webhook-deliveries/${delivery.id}/redeliver`, {}, { key })],
      ['POST /v1/qr/validate', () => sys.http.post('/v1/qr/validate', { qr }, { key })],
      // Last: if it wrongly succeeds, the rotate and redeliver checks above still meant something.
      ['DELETE /v1/merchant/webhook-endpoints/:id', () => sys.http.delete(`/v1/merchant/webhook-endpoints/${ep.body.id}`, { key })],
    ];
    // Every write is tried before asserting, so one failure message lists all the routes still open.
    const wrong: string[] = [];
    for (const [what, send] of writes) {
      const res = await send();
      if (res.status !== 403 || res.body?.error?.code !== 'MERCHANT_SUSPENDED') wrong.push(`${what} → ${res.status} ${res.text.slice(0, 160)}`);
    }
    expect(wrong, 'writes not refused with 403 MERCHANT_SUSPENDED').to.deep.equal([]);

    await new Promise((r) => setTimeout(r, 300)); // anything wrongly enqueued would have run by now
    expect(await snapshot(), 'nothing changed in Postgres').to.deep.equal(before);
    expect(receiver.requests.length, 'no redelivery reached the receiver').to.equal(receivedBefore);

    // Reads of its own history stay.
    const history = await sys.http.get('/v1/merchant/transactions', { key });
    expect(history.status, history.text).to.equal(200);
    expect((history.body.data as any[]).map((t) => t.tx_no)).to.include(txNo);
    expect((await sys.http.get('/v1/merchant/webhook-endpoints', { key })).status).to.equal(200);

    // Reactivated: writes work again.
    const reactivate = await sys.http.post(`/v1/merchants/${merchant.id}/reactivate`, {}, { key: sys.adminKey });
    expect(reactivate.status, reactivate.text).to.equal(200);
    const validate = await sys.http.post('/v1/qr/validate', { qr }, { key });
    expect(validate.status, validate.text).to.equal(200);
    expect(validate.body.valid).to.equal(true);
    expectSucceeded(await charge(sys, key, { qr, amount: '10.00', payment_method: 'cash' }), 'payment after reactivation');
    expectSucceeded(await refund(sys, key, { original_tx_no: txNo, amount: '5.00' }), 'refund after reactivation');
    const rotate = await sys.http.post(`/v1/merchant/webhook-endpoints/${ep.body.id}/rotate-secret`, {}, { key });
    expect(rotate.status, rotate.text).to.equal(200);
    const redeliver = await sys.http.post(`/v1/merchant/webhook-deliveries/${delivery.id}/redeliver`, {}, { key });
    expect(redeliver.status, redeliver.text).to.equal(202);
    const second = await sys.http.post('/v1/merchant/webhook-endpoints', { url: receiver.url, events: ['payment.succeeded'] }, { key });
    expect(second.status, second.text).to.equal(201);
    const del = await sys.http.delete(`/v1/merchant/webhook-endpoints/${second.body.id}`, { key });
    expect(del.status, del.text).to.equal(204);
  });

  it('another merchant is not affected by the suspension', async () => {
    const suspended = await createMerchant(sys);
    const other = await createMerchant(sys);
    expect((await sys.http.post(`/v1/merchants/${suspended.merchant.id}/suspend`, {}, { key: sys.adminKey })).status).to.equal(200);
    const member = await createMember(sys);
    await chargeOk(sys, other.key, member.cards[0]!.id, '15.00', { payment_method: 'cash' });
  });
});

describe('security: suspended member', function () {
  this.timeout(30_000);
  let sys: TestSystem;
  before(async () => {
    sys = await startSystem({ CARD_PARTITIONS: 2 }, { workers: false });
  });
  after(async () => {
    await sys?.stop();
  });

  it("the member's token gets 403 MEMBER_SUSPENDED on GET /v1/members/:id and GET /v1/cards/:id; other members and admins are unaffected", async () => {
    const x = await memberWithToken(sys);
    const y = await memberWithToken(sys);
    // Control: the token works before.
    expect((await sys.http.get(`/v1/members/${x.member.id}`, { key: x.token })).status).to.equal(200);
    expect((await sys.http.get(`/v1/cards/${x.standardCard.id}`, { key: x.token })).status).to.equal(200);

    const suspend = await sys.http.post(`/v1/members/${x.member.id}/suspend`, {}, { key: sys.adminKey });
    expect(suspend.status, suspend.text).to.equal(200);

    expectCode(await sys.http.get(`/v1/members/${x.member.id}`, { key: x.token }), 403, 'MEMBER_SUSPENDED', 'GET member with its token');
    expectCode(await sys.http.get(`/v1/cards/${x.standardCard.id}`, { key: x.token }), 403, 'MEMBER_SUSPENDED', 'GET card with its token');

    expect((await sys.http.get(`/v1/members/${y.member.id}`, { key: y.token })).status, 'another member').to.equal(200);
    expect((await sys.http.get(`/v1/cards/${y.standardCard.id}`, { key: y.token })).status, 'another member card').to.equal(200);
    const asAdmin = await sys.http.get(`/v1/members/${x.member.id}`, { key: sys.adminKey });
    expect(asAdmin.status, asAdmin.text).to.equal(200);
    expect(asAdmin.body.status).to.equal('suspended');
  });
});
