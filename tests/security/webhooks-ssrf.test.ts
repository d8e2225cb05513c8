import { expect } from 'chai';
import { loadConfig } from '../../config/env.js';
import { seal } from '../../domain/secret-box.js';
import { countRows, createMember, createMerchant } from '../helpers/fixtures.js';
import { chargeOk } from '../helpers/money.js';
import { startSystem, type TestSystem } from '../helpers/system.js';
import { startReceiver, waitFor, type TestReceiver } from '../helpers/webhook-receiver.js';
import { configProblems, expectCode, productionEnv, startRelayLoop, startTcpCounter } from './helpers.js';

/**
 * Finding: webhook SSRF. With WEBHOOK_ALLOW_INSECURE=false (the production setting) a merchant
 * can register only https URLs to public addresses, whatever form the address is written in;
 * an endpoint that points at loopback/private space anyway (registered earlier, or DNS
 * rebinding) is refused at send time, with nothing sent and nothing of a response logged; and a
 * merchant has at most WEBHOOK_MAX_ENDPOINTS endpoints.
 */

const EVENTS = ['payment.succeeded'];

const REFUSED_AT_REGISTRATION = [
  'http://example.com/hooks/mps',
  'http://93.184.215.14/hooks/mps',
  'https://127.0.0.1/hooks/mps',
  'https://2130706433/hooks/mps',
  'https://0x7f000001/hooks/mps',
  'https://127.1/hooks/mps',
  'https://0.0.0.0/hooks/mps',
  'https://[::1]/hooks/mps',
  'https://localhost/hooks/mps',
  'https://169.254.169.254/latest/meta-data/',
  'https://10.0.0.1/hooks/mps',
  'https://[::ffff:127.0.0.1]/hooks/mps',
  'https://[::ffff:7f00:1]/hooks/mps',
  'https://[fd00::1]/hooks/mps',
  // More spellings of the same places (API.md: every IPv4/IPv6 form normalized first).
  'https://0177.0.0.1/hooks/mps',
  'https://0/hooks/mps',
  'https://127.0.0.1./hooks/mps',
  'https://localhost./hooks/mps',
  'https://LOCALHOST/hooks/mps',
  'https://[::]/hooks/mps',
  'https://[0:0:0:0:0:ffff:7f00:1]/hooks/mps',
  'https://[::ffff:a9fe:a9fe]/latest/meta-data/',
  'https://[fe80::1]/hooks/mps',
  'https://192.168.1.1/hooks/mps',
  'https://172.16.0.1/hooks/mps',
  'https://100.64.0.1/hooks/mps',
  'https://user:pass@93.184.215.14/hooks/mps',
];

describe('security: webhook SSRF (WEBHOOK_ALLOW_INSECURE=false)', function () {
  this.timeout(60_000);
  let sys: TestSystem;
  let relay: ReturnType<typeof startRelayLoop>;
  let receiver: TestReceiver;
  let tcp: Awaited<ReturnType<typeof startTcpCounter>>;

  before(async () => {
    sys = await startSystem({ WEBHOOK_ALLOW_INSECURE: false, CARD_PARTITIONS: 2 });
    relay = startRelayLoop(sys);
    receiver = await startReceiver(200);
    tcp = await startTcpCounter();
  });
  after(async () => {
    await relay?.stop();
    await receiver?.close();
    await tcp?.close();
    await sys?.stop();
  });

  describe('registration', () => {
    // One merchant for every refused URL: none of them may ever leave a row behind.
    let refusedMerchant: Awaited<ReturnType<typeof createMerchant>>;
    before(async () => {
      refusedMerchant = await createMerchant(sys);
    });

    for (const url of REFUSED_AT_REGISTRATION) {
      it(`refuses ${url} with 400 VALIDATION_ERROR and stores nothing`, async () => {
        const { key, merchant } = refusedMerchant;
        const before = await sys.http.get('/v1/merchant/webhook-endpoints', { key });
        expect(before.status, before.text).to.equal(200);
        const res = await sys.http.post('/v1/merchant/webhook-endpoints', { url, events: EVENTS }, { key });
        expectCode(res, 400, 'VALIDATION_ERROR', url);
        expect(res.body).to.not.have.property('secret');
        const after = await sys.http.get('/v1/merchant/webhook-endpoints', { key });
        expect(after.body.data, 'listed endpoints').to.deep.equal(before.body.data);
        expect(await countRows(sys, 'webhook_endpoints', { merchant_id: merchant.id })).to.equal(0);
      });
    }

    it('still accepts an https URL to a public address (control: the rule is not "refuse everything")', async () => {
      // An IP literal needs no DNS; no event of this merchant is ever sent to it (no payments).
      const { key, merchant } = await createMerchant(sys);
      const res = await sys.http.post('/v1/merchant/webhook-endpoints', { url: 'https://93.184.215.14/hooks/mps', events: EVENTS }, { key });
      expect(res.status, res.text).to.equal(201);
      expect(res.body.secret).to.be.a('string');
      expect(await countRows(sys, 'webhook_endpoints', { merchant_id: merchant.id })).to.equal(1);
      const del = await sys.http.delete(`/v1/merchant/webhook-endpoints/${res.body.id}`, { key });
      expect(del.status, del.text).to.equal(204);
    });
  });

  describe('send time', () => {
    /** An endpoint row written straight to Postgres: as if registered before the rule, or a name that now resolves to loopback. */
    async function insertEndpointRow(merchantId: string, url: string): Promise<string> {
      const [row] = await sys.deps
        .db('webhook_endpoints')
        .insert({ merchant_id: merchantId, url, events: EVENTS, secret_enc: seal('whsec_planted_secret', sys.config.ENCRYPTION_KEY!) })
        .returning('id');
      return row.id as string;
    }

    async function deliveriesOf(key: string, endpointId: string): Promise<any[]> {
      const res = await sys.http.get(`/v1/merchant/webhook-deliveries?endpoint_id=${endpointId}`, { key });
      expect(res.status, res.text).to.equal(200);
      return res.body.data;
    }

    function expectRefusedAttempt(attempt: any, what: string): void {
      expect(attempt, what).to.be.an('object');
      expect(attempt.status ?? null, `${what}: no HTTP status (nothing was sent): ${JSON.stringify(attempt)}`).to.equal(null);
      expect(attempt.excerpt ?? '', `${what}: no response excerpt`).to.equal('');
      expect(attempt.body ?? '', `${what}: no response body`).to.equal('');
      expect(attempt.error, `${what}: the attempt says it was refused: ${JSON.stringify(attempt)}`).to.match(/refus|private|loopback|not allowed|forbidden|blocked|must be https/i);
    }

    it('refuses every attempt to loopback endpoints (http to the real receiver, https to a TCP listener), and redelivery too', async () => {
      const { key, merchant } = await createMerchant(sys);
      const toReceiver = await insertEndpointRow(merchant.id, receiver.url);
      const toTcpHttps = await insertEndpointRow(merchant.id, `https://127.0.0.1:${tcp.port}/hooks/mps`);
      const toLocalhost = await insertEndpointRow(merchant.id, `https://localhost:${tcp.port}/hooks/mps`);
      const endpoints = [toReceiver, toTcpHttps, toLocalhost];

      const member = await createMember(sys);
      await chargeOk(sys, key, member.cards[0]!.id, '12.00', { payment_method: 'cash' });

      const firstAttempts = await waitFor(
        'a logged attempt on each planted endpoint',
        async () => {
          const all = await Promise.all(endpoints.map((id) => deliveriesOf(key, id)));
          return all.every((d) => d.length === 1 && d[0].attempts >= 1) ? all.map((d) => d[0]) : undefined;
        },
        15_000,
      ).catch((err: Error) => {
        throw new Error(`${err.message}; relay errors: ${relay.errors.map((e) => e.message).join(' | ') || 'none'}`);
      });
      for (const d of firstAttempts) expectRefusedAttempt(d.attempt_log[0], `delivery to ${d.endpoint_id}`);
      expect(receiver.requests, 'the loopback receiver got a request').to.have.length(0);
      expect(tcp.connections(), 'TCP connections to the loopback listener').to.equal(0);

      // Redelivery is refused the same way: either synchronously, or its attempt is refused and logged.
      for (const d of firstAttempts) {
        const res = await sys.http.post(`/v1/merchant/webhook-deliveries/${d.id}/redeliver`, {}, { key });
        if (res.status === 202) {
          const again = await waitFor(`the redelivery attempt of ${d.id}`, async () => {
            const [row] = await deliveriesOf(key, d.endpoint_id);
            return row.attempts > d.attempts ? row : undefined;
          });
          expectRefusedAttempt(again.attempt_log[again.attempt_log.length - 1], `redelivery to ${d.endpoint_id}`);
        } else {
          expect(res.status, `redeliver answered ${res.status} ${res.text}`).to.be.within(400, 499);
        }
      }
      await new Promise((r) => setTimeout(r, 300));
      expect(receiver.requests, 'the loopback receiver got a request after redelivery').to.have.length(0);
      expect(tcp.connections(), 'TCP connections after redelivery').to.equal(0);
    });
  });
});

describe('security: webhook endpoints per merchant (WEBHOOK_MAX_ENDPOINTS)', function () {
  this.timeout(30_000);
  let sys: TestSystem;
  before(async () => {
    sys = await startSystem({ WEBHOOK_ALLOW_INSECURE: true, WEBHOOK_MAX_ENDPOINTS: 2, CARD_PARTITIONS: 2 }, { workers: false });
  });
  after(async () => {
    await sys?.stop();
  });

  it('the 3rd endpoint of a merchant is 409 CONFLICT and only 2 are stored; another merchant is unaffected', async () => {
    const { key, merchant } = await createMerchant(sys);
    for (let i = 0; i < 2; i += 1) {
      const res = await sys.http.post('/v1/merchant/webhook-endpoints', { url: `http://127.0.0.1:9/hooks/${i}`, events: EVENTS }, { key });
      expect(res.status, res.text).to.equal(201);
    }
    const third = await sys.http.post('/v1/merchant/webhook-endpoints', { url: 'http://127.0.0.1:9/hooks/3', events: EVENTS }, { key });
    expectCode(third, 409, 'CONFLICT', 'third endpoint');
    expect(await countRows(sys, 'webhook_endpoints', { merchant_id: merchant.id })).to.equal(2);
    const list = await sys.http.get('/v1/merchant/webhook-endpoints', { key });
    expect(list.body.data).to.have.length(2);

    const other = await createMerchant(sys);
    const res = await sys.http.post('/v1/merchant/webhook-endpoints', { url: 'http://127.0.0.1:9/hooks/other', events: EVENTS }, { key: other.key });
    expect(res.status, res.text).to.equal(201);
  });
});

describe('security: WEBHOOK_ALLOW_INSECURE in config', () => {
  it('is false by default in production', () => {
    const config = loadConfig(productionEnv());
    expect(config.WEBHOOK_ALLOW_INSECURE).to.equal(false);
  });

  it('NODE_ENV=production with WEBHOOK_ALLOW_INSECURE=true is a ConfigError naming WEBHOOK_ALLOW_INSECURE', () => {
    const { message } = configProblems(productionEnv({ WEBHOOK_ALLOW_INSECURE: 'true' }));
    expect(message).to.contain('WEBHOOK_ALLOW_INSECURE');
  });
});
