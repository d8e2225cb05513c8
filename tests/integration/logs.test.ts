import { randomBytes, randomUUID } from 'node:crypto';
import { expect } from 'chai';
import { createLogger } from '../../config/logger.js';
import { LogCapture, startCapturedSystem, type CapturedSystem } from '../helpers/captured-system.js';
import { createAppKey, createMember, createMerchant, issueCard, memberToken, randomEmail, randomPhone } from '../helpers/fixtures.js';
import type { HttpResult } from '../helpers/http.js';
import { charge, expectFailed, expectSucceeded, issueQr, recharge, refund } from '../helpers/money.js';

/**
 * DESIGN.md §3: no secret (QR token, API key, binding password, webhook secret) ever reaches a
 * log. The whole money path runs at debug level with the logger writing to memory, and the
 * captured text is searched for every secret the test handled.
 */
describe('logs: structured, correlated and free of secrets', function () {
  this.timeout(40_000);
  let sys: CapturedSystem;
  const secrets = new Map<string, string>();
  const requestIds: string[] = [];
  let failedRequest: HttpResult;
  let failedOperationId: string;
  let triggerName: string;

  const keep = <T extends HttpResult>(res: T): T => {
    const id = res.headers.get('x-request-id');
    if (id) requestIds.push(id);
    return res;
  };

  before(async () => {
    sys = await startCapturedSystem('debug', { JOB_ATTEMPTS: 2, JOB_BACKOFF_MS: 10 });
    secrets.set('admin key', sys.adminKey);
    const { merchant, key: merchantKey } = await createMerchant(sys);
    secrets.set('merchant key', merchantKey);
    const appKey = await createAppKey(sys);
    secrets.set('app key', appKey);

    const owner = await createMember(sys, { key: appKey, name: '陳大文', phone: randomPhone(), email: randomEmail('owner') });
    const ownerToken = await memberToken(sys, owner.id, appKey);
    secrets.set('owner member token', ownerToken);
    const password = `bind-${randomBytes(8).toString('hex')}`;
    secrets.set('binding password', password);
    const card = await issueCard(sys, { type: 'prepaid', ownerMemberId: owner.id, password, key: appKey });

    const family = await createMember(sys, { key: appKey, name: '陳小文' });
    const familyToken = await memberToken(sys, family.id, appKey);
    secrets.set('family member token', familyToken);
    const wrongPassword = `wrong-${randomBytes(8).toString('hex')}`;
    secrets.set('wrong binding password', wrongPassword);
    const refused = keep(await sys.http.post('/v1/cards/bind', { card_no: card.card_no, binding_password: wrongPassword }, { key: familyToken }));
    expect(refused.status).to.equal(403);
    const bound = keep(await sys.http.post('/v1/cards/bind', { card_no: card.card_no, binding_password: password }, { key: familyToken, headers: { 'x-request-id': 'client-bind-request-1' } }));
    expect(bound.status, bound.text).to.equal(201);

    expectSucceeded(keep(await recharge(sys, card.id, { amount: '800.00', payment_reference: `psp-${randomBytes(6).toString('hex')}` }, { key: appKey })), 'recharge');
    const qr = await issueQr(sys, card.id, familyToken);
    secrets.set('QR token', qr);
    const validated = keep(await sys.http.post('/v1/qr/validate', { qr }, { key: merchantKey }));
    expect(validated.body.valid).to.equal(true);
    const paid = expectSucceeded(keep(await charge(sys, merchantKey, { qr, amount: '299.00' })), 'payment');
    expectSucceeded(keep(await refund(sys, merchantKey, { original_tx_no: paid.result!.tx_no as string, amount: '20.00' })), 'refund');
    expectSucceeded(keep(await recharge(sys, card.id, { amount: '100.00' })), 'recharge by an admin');
    keep(await sys.http.get(`/v1/operations/${paid.id}`, { key: merchantKey }));

    const endpoint = keep(await sys.http.post('/v1/merchant/webhook-endpoints', { url: 'http://127.0.0.1:9/hook', events: ['payment.succeeded'] }, { key: merchantKey }));
    expect(endpoint.status, endpoint.text).to.equal(201);
    secrets.set('webhook secret', endpoint.body.secret as string);
    const rotated = keep(await sys.http.post(`/v1/merchant/webhook-endpoints/${endpoint.body.id}/rotate-secret`, {}, { key: merchantKey }));
    expect(rotated.status, rotated.text).to.equal(200);
    secrets.set('rotated webhook secret', rotated.body.secret as string);

    const basic = Buffer.from(`admin:${sys.adminKey}`).toString('base64');
    secrets.set('Bull Board basic credentials', basic);
    expect(keep(await sys.http.get('/admin/queues', { headers: { authorization: `Basic ${basic}` } })).status).to.equal(200);

    // A 500 on a request that carries a QR token and a key: a trigger fails this merchant's operation inserts.
    triggerName = `mps_test_fail_${randomBytes(4).toString('hex')}`;
    await sys.deps.db.raw(`CREATE FUNCTION ${triggerName}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'injected test failure'; END $$`);
    await sys.deps.db.raw(`CREATE TRIGGER ${triggerName} BEFORE INSERT ON operations FOR EACH ROW WHEN (NEW.merchant_id = '${merchant.id}' AND NEW.amount_minor = 4242) EXECUTE FUNCTION ${triggerName}()`);
    // And a job that keeps failing for an infrastructure reason: the payment's transaction insert fails.
    await sys.deps.db.raw(`CREATE TRIGGER ${triggerName}_tx BEFORE INSERT ON transactions FOR EACH ROW WHEN (NEW.merchant_id = '${merchant.id}' AND NEW.raw_amount_minor = 4343) EXECUTE FUNCTION ${triggerName}()`);
    const qr2 = await issueQr(sys, card.id, familyToken);
    secrets.set('second QR token', qr2);
    failedRequest = keep(await charge(sys, merchantKey, { qr: qr2, amount: '42.42' }));
    expect(failedRequest.status, failedRequest.text).to.equal(500);
    const jobFailure = expectFailed(keep(await charge(sys, merchantKey, { qr: qr2, amount: '43.43' }, { wait: 15 })), 'INTERNAL_ERROR');
    failedOperationId = jobFailure.id;
  });
  after(async () => {
    if (triggerName) {
      await sys.deps.db.raw(`DROP TRIGGER IF EXISTS ${triggerName} ON operations`);
      await sys.deps.db.raw(`DROP TRIGGER IF EXISTS ${triggerName}_tx ON transactions`);
      await sys.deps.db.raw(`DROP FUNCTION IF EXISTS ${triggerName}()`);
    }
    await sys?.stop();
  });

  it('writes one JSON object per line, from the mps service', () => {
    const lines = sys.logs.lines();
    expect(lines.length).to.be.greaterThan(20);
    for (const l of lines) {
      expect(l.service).to.equal('mps');
      expect(l.level).to.be.a('number');
      expect(l.msg).to.be.a('string');
    }
  });

  it('contains none of the secrets the flow used', () => {
    expect(secrets.size).to.equal(12);
    const text = sys.logs.text;
    const leaked = [...secrets].filter(([, value]) => text.includes(value)).map(([what]) => what);
    expect(leaked, 'secrets found in the logs').to.deep.equal([]);
    // Nor a recognisable fragment of one: the random part of each key or token.
    for (const [what, value] of secrets) {
      const tail = value.slice(-16);
      expect(text.includes(tail), `${what} (last 16 characters)`).to.equal(false);
    }
  });

  it('logs every request with its request id, route pattern and key id (never the key)', () => {
    const lines = sys.logs.lines();
    const logged = new Set(lines.filter((l) => l.msg === 'request').map((l) => l.request_id));
    expect(requestIds.length).to.be.greaterThan(10);
    expect(requestIds.filter((id) => !logged.has(id)), 'request ids without a log line').to.deep.equal([]);
    expect(logged.has('client-bind-request-1')).to.equal(true);
    const payment = lines.find((l) => l.msg === 'request' && l.route === '/v1/payments' && l.status === 200);
    expect(payment, 'the payment request line').to.not.equal(undefined);
    expect(payment!.key_id).to.match(/^[0-9a-f-]{36}$/);
    expect(payment!.method).to.equal('POST');
    expect(payment!.ms).to.be.a('number');
  });

  it('logs one "operation done" line per finished operation, with its id, type, outcome and ms', () => {
    const done = sys.logs.lines().filter((l) => l.msg === 'operation done');
    const byType = (type: string, outcome: string) => done.filter((l) => l.type === type && l.outcome === outcome);
    expect(byType('payment', 'succeeded'), JSON.stringify(done)).to.have.length(1);
    expect(byType('refund', 'succeeded')).to.have.length(1);
    expect(byType('recharge', 'succeeded')).to.have.length(2);
    for (const l of done) {
      expect(l.operation_id).to.match(/^op_[0-9a-f]{32}$/);
      expect(l.ms).to.be.a('number');
      expect(l.level).to.equal(30);
    }
    expect(new Set(done.map((l) => l.operation_id)).size, 'each operation once').to.equal(done.length);
  });

  it('logs a 500 with its request id and error, but neither the QR token nor the key', () => {
    const requestId = failedRequest.headers.get('x-request-id');
    expect(failedRequest.body.error).to.deep.include({ code: 'INTERNAL_ERROR', request_id: requestId });
    expect(failedRequest.text).to.not.contain('injected test failure');
    const lines = sys.logs.lines().filter((l) => l.request_id === requestId);
    const error = lines.find((l) => l.msg === 'request failed');
    expect(error, JSON.stringify(lines)).to.not.equal(undefined);
    expect(error!.level).to.equal(50);
    expect(JSON.stringify(error)).to.contain('injected test failure');
    const text = JSON.stringify(lines);
    for (const what of ['second QR token', 'merchant key']) expect(text.includes(secrets.get(what)!), what).to.equal(false);
  });

  it('logs failing job attempts with the job id and operation id, and no secret', () => {
    const lines = sys.logs.lines().filter((l) => l.operation_id === failedOperationId);
    expect(lines.map((l) => l.msg)).to.include.members(['job attempt failed', 'operation failed after the last attempt', 'operation done']);
    expect(lines.find((l) => l.msg === 'operation done')).to.include({ outcome: 'failed', code: 'INTERNAL_ERROR' });
    for (const l of lines.filter((l) => l.msg !== 'operation done')) {
      expect(l.job_id).to.equal(failedOperationId);
      expect(l.queue).to.match(/^card-ops-\{\d+\}$/);
      expect(l.err).to.contain('injected test failure');
    }
    const text = JSON.stringify(lines);
    for (const [what, value] of secrets) expect(text.includes(value), what).to.equal(false);
  });

  it('the logger redacts secret-named fields wherever code passes them', () => {
    const capture = new LogCapture();
    const logger = createLogger('info', capture);
    const s = () => `mps_mk_${randomUUID()}`;
    const values = Array.from({ length: 12 }, s);
    logger.info({ qr: values[0], key: values[1], token: values[2], secret: values[3], binding_password: values[4], password: values[5], authorization: values[6] }, 'top level');
    logger.info({ body: { qr: values[7], binding_password: values[8] }, headers: { authorization: values[9] }, req: { headers: { authorization: values[10] } }, endpoint: { secret: values[11] } }, 'nested');
    expect(capture.lines()).to.have.length(2);
    for (const v of values) expect(capture.text).to.not.contain(v);
    expect(capture.text).to.contain('[redacted]');
  });
});
