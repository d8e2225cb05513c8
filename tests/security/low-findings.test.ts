import { randomBytes } from 'node:crypto';
import { connect, type AddressInfo } from 'node:net';
import { expect } from 'chai';
import { startApi } from '../../api/server.js';
import { closeDeps, createDeps } from '../../app/deps.js';
import { loadConfig } from '../../config/env.js';
import { testEnv } from '../helpers/env.js';
import { countRows, createAppKey, createMember, createMerchant, issueCard, memberWithToken } from '../helpers/fixtures.js';
import { charge, chargeOk, expectFailed, issueQr } from '../helpers/money.js';
import { startSystem, type TestSystem } from '../helpers/system.js';
import { expectCode, luhnValid } from './helpers.js';

/** The low findings of the review: slow bodies, QR issue flooding, frozen cards' QRs, guessable numbers, binding brute force. */

/** Sends headers announcing 100 body bytes and only 10, then waits up to `waitMs` for an answer or a close. */
function slowBody(port: number, waitMs: number): Promise<{ outcome: 'answered' | 'closed' | 'open'; firstLine: string; afterMs: number }> {
  return new Promise((resolve) => {
    const started = Date.now();
    const socket = connect(port, '127.0.0.1');
    let data = '';
    let done = false;
    const finish = (outcome: 'answered' | 'closed' | 'open') => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      resolve({ outcome, firstLine: data.split('\r\n')[0] ?? '', afterMs: Date.now() - started });
    };
    const timer = setTimeout(() => finish('open'), waitMs);
    socket.on('connect', () => {
      socket.write('POST /v1/members HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"name":"a');
    });
    socket.on('data', (chunk) => {
      data += chunk.toString('latin1');
      if (data.includes('\r\n')) finish('answered');
    });
    socket.on('end', () => finish('closed'));
    socket.on('close', () => finish('closed'));
    socket.on('error', () => finish('closed'));
  });
}

describe('security: low findings', function () {
  this.timeout(60_000);

  describe('(a) a slowly sent body does not hold the socket (HTTP_REQUEST_TIMEOUT_MS)', () => {
    async function withApi<T>(overrides: Record<string, unknown>, run: (port: number) => Promise<T>): Promise<T> {
      const config = loadConfig(
        { DATABASE_URL: testEnv.databaseUrl, REDIS_URL: testEnv.redisUrl, LOG_LEVEL: 'silent', NODE_ENV: 'test' },
        { QUEUE_PREFIX: `t${randomBytes(4).toString('hex')}`, CARD_PARTITIONS: 2, ENCRYPTION_KEY: randomBytes(32).toString('hex'), ...overrides },
      );
      const deps = await createDeps(config);
      const api = await startApi(deps, 0, '127.0.0.1');
      try {
        return await run((api.server.address() as AddressInfo).port);
      } finally {
        api.server.closeAllConnections();
        await api.stop();
        await closeDeps(deps);
      }
    }

    it('with HTTP_REQUEST_TIMEOUT_MS 1000 the server answers 408 or closes within 3 s; with the default it is still waiting after 1.5 s (control)', async () => {
      const [short, long] = await Promise.all([
        withApi({ HTTP_REQUEST_TIMEOUT_MS: 1000 }, (port) => slowBody(port, 3000)),
        withApi({}, (port) => slowBody(port, 1500)),
      ]);
      expect(short.outcome, JSON.stringify(short)).to.be.oneOf(['answered', 'closed']);
      if (short.outcome === 'answered') expect(short.firstLine, JSON.stringify(short)).to.match(/^HTTP\/1\.1 408/);
      expect(short.afterMs, 'closed by the timeout, not at once').to.be.at.least(500);
      expect(long.outcome, `default timeout: ${JSON.stringify(long)}`).to.equal('open');
    });
  });

  describe('(b) QR issues per card are rate limited (RATE_LIMIT_QR_ISSUE_PER_CARD_PER_MIN)', () => {
    let sys: TestSystem;
    before(async () => {
      sys = await startSystem({ RATE_LIMIT_QR_ISSUE_PER_CARD_PER_MIN: 3, CARD_PARTITIONS: 2 }, { workers: false });
    });
    after(async () => {
      await sys?.stop();
    });

    it('the 4th POST /v1/cards/:id/qr within the minute → 429 RATE_LIMITED with Retry-After, whichever key asks; another card is unaffected', async () => {
      const appKey = await createAppKey(sys);
      const member = await createMember(sys);
      const other = await createMember(sys);
      const cardId = member.cards[0]!.id;
      for (let i = 0; i < 3; i += 1) await issueQr(sys, cardId);
      const fourth = await sys.http.post(`/v1/cards/${cardId}/qr`, {}, { key: appKey });
      expectCode(fourth, 429, 'RATE_LIMITED', '4th QR issue (another key)');
      expect(fourth.headers.get('retry-after'), 'Retry-After').to.match(/^\d+$/);
      expect(Number(fourth.headers.get('retry-after'))).to.be.within(1, 60);
      expectCode(await sys.http.post(`/v1/cards/${cardId}/qr`, {}, { key: sys.adminKey }), 429, 'RATE_LIMITED', '5th QR issue');
      await issueQr(sys, other.cards[0]!.id);
    });
  });

  describe('(c)–(e) on one system', () => {
    let sys: TestSystem;
    let merchantKey: string;
    before(async () => {
      sys = await startSystem({ CARD_PARTITIONS: 2 });
      merchantKey = (await createMerchant(sys)).key;
    });
    after(async () => {
      await sys?.stop();
    });

    describe('(c) freezing a card ends its live QR tokens', () => {
      it('issue QR, freeze, unfreeze: the old QR validates false (revoked) and its payment fails QR_EXPIRED_OR_INVALID; a new QR pays', async () => {
        const member = await createMember(sys);
        const cardId = member.cards[0]!.id;
        const qr = await issueQr(sys, cardId);
        const live = await sys.http.post('/v1/qr/validate', { qr }, { key: merchantKey });
        expect(live.body.valid, `control: ${live.text}`).to.equal(true);

        for (const action of ['freeze', 'unfreeze']) {
          const res = await sys.http.post(`/v1/cards/${cardId}/${action}`, {}, { key: sys.adminKey });
          expect(res.status, `${action}: ${res.text}`).to.equal(200);
        }
        const validate = await sys.http.post('/v1/qr/validate', { qr }, { key: merchantKey });
        expect(validate.status, validate.text).to.equal(200);
        expect(validate.body.valid, validate.text).to.equal(false);
        expect(validate.body.reason, validate.text).to.equal('revoked');

        const res = await charge(sys, merchantKey, { qr, amount: '10.00', payment_method: 'cash' });
        if (res.status === 422) expectCode(res, 422, 'QR_EXPIRED_OR_INVALID', 'old QR');
        else expectFailed(res, 'QR_EXPIRED_OR_INVALID', 'payment with the QR from before the freeze');
        expect(await countRows(sys, 'transactions', { card_id: cardId })).to.equal(0);

        await chargeOk(sys, merchantKey, cardId, '10.00', { payment_method: 'cash' });
      });
    });

    describe('(d) card_no and tx_no are not guessable', () => {
      const asBig = (digits: string) => BigInt(digits);

      function expectNotACounter(values: bigint[], what: string): void {
        const diffs = values.slice(1).map((v, i) => v - values[i]!);
        for (const d of diffs) expect(d === 1n || d === -1n, `${what}: consecutive values differ by 1 (${values.join(', ')})`).to.equal(false);
        expect(new Set(diffs.map(String)).size, `${what}: a constant step (${diffs.join(', ')})`).to.be.greaterThan(1);
        expect(new Set(values.map(String)).size, `${what}: unique`).to.equal(values.length);
      }

      it('consecutive card_no values are not a counter and each passes a Luhn check', async () => {
        const cards: string[] = [];
        for (let i = 0; i < 4; i += 1) cards.push((await createMember(sys)).cards[0]!.card_no);
        const owner = await createMember(sys);
        for (let i = 0; i < 2; i += 1) cards.push((await issueCard(sys, { type: 'prepaid', ownerMemberId: owner.id })).card_no);
        for (const no of cards) {
          expect(no, 'a 16-digit number').to.match(/^\d{16}$/);
          expect(luhnValid(no), `Luhn check digit of ${no}`).to.equal(true);
        }
        expectNotACounter(cards.slice(0, 4).map(asBig), 'standard card_no');
      });

      it('tx_no values of consecutive payments are not consecutive numbers', async () => {
        const member = await createMember(sys);
        const txNos: string[] = [];
        for (let i = 0; i < 5; i += 1) txNos.push((await chargeOk(sys, merchantKey, member.cards[0]!.id, '1.00', { payment_method: 'cash' })).result!.tx_no as string);
        for (const t of txNos) expect(t, 'PAY prefix').to.match(/^PAY[0-9A-Z]+$/);
        expect(new Set(txNos).size, 'unique').to.equal(txNos.length);
        // Digits only (as today: PAY + date + number): judged as numbers; any other alphabet cannot be a counter of numbers.
        if (txNos.every((t) => /^PAY\d+$/.test(t))) expectNotACounter(txNos.map((t) => asBig(t.slice(3))), 'payment tx_no');
      });
    });

    describe('(e) binding attempts are limited per card; weak binding passwords are refused', () => {
      const PASSWORD = 'Family-2026!';

      it('after 5 wrong passwords from 5 different members, the right password → 429 BINDING_LOCKED; another card is unaffected', async () => {
        const owner = await createMember(sys);
        const card = await issueCard(sys, { type: 'prepaid', ownerMemberId: owner.id, password: PASSWORD });
        const otherCard = await issueCard(sys, { type: 'prepaid', ownerMemberId: owner.id, password: PASSWORD });
        for (let i = 0; i < 5; i += 1) {
          const { token } = await memberWithToken(sys);
          const res = await sys.http.post('/v1/cards/bind', { card_no: card.card_no, binding_password: `wrong-Pass-${i}` }, { key: token });
          expectCode(res, 403, 'BINDING_PASSWORD_INVALID', `wrong password #${i + 1}`);
        }
        const sixth = await memberWithToken(sys);
        const locked = await sys.http.post('/v1/cards/bind', { card_no: card.card_no, binding_password: PASSWORD }, { key: sixth.token });
        expectCode(locked, 429, 'BINDING_LOCKED', 'right password after 5 failures');
        expect(await countRows(sys, 'card_bindings', { card_id: card.id }), 'only the owner is bound').to.equal(1);

        const ok = await sys.http.post('/v1/cards/bind', { card_no: otherCard.card_no, binding_password: PASSWORD }, { key: sixth.token });
        expect(ok.status, `another card: ${ok.text}`).to.equal(201);
      });

      for (const weak of ['123456', 'password', 'abcdefgh', 'abcdefg1', 'Ab1!x']) {
        it(`binding_password '${weak}' at card creation → 400 VALIDATION_ERROR, no card`, async () => {
          const owner = await createMember(sys);
          const res = await sys.http.post('/v1/cards', { type: 'prepaid', owner_member_id: owner.id, binding_password: weak }, { key: sys.adminKey });
          expectCode(res, 400, 'VALIDATION_ERROR', weak);
          expect(JSON.stringify(res.body.error)).to.contain('binding_password');
          expect(await countRows(sys, 'member_cards', { owner_member_id: owner.id, type: 'prepaid' })).to.equal(0);
        });
      }

      it("a password of 8+ characters from 3 classes ('Abcdefg1', 'family-123456') is accepted (control)", async () => {
        const owner = await createMember(sys);
        for (const password of ['Abcdefg1', 'family-123456']) {
          const res = await sys.http.post('/v1/cards', { type: 'corporate', owner_member_id: owner.id, binding_password: password }, { key: sys.adminKey });
          expect(res.status, `${password}: ${res.text}`).to.equal(201);
        }
      });
    });
  });
});
