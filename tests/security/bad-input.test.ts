import { expect } from 'chai';
import { createMerchant, memberWithToken } from '../helpers/fixtures.js';
import { startSystem, type TestSystem } from '../helpers/system.js';
import { expectCode } from './helpers.js';

/**
 * Finding: malformed percent-encoding and impossible dates reached code that threw, and the
 * API answered 500 (and logged an internal error for each probe). API.md "Security rules":
 * malformed URLs, percent-encoding or impossible dates are 400, never 500.
 */

describe('security: bad input is 400, never 500', function () {
  this.timeout(30_000);
  let sys: TestSystem;
  let merchantKey: string;
  let member: Awaited<ReturnType<typeof memberWithToken>>;

  before(async () => {
    sys = await startSystem({ CARD_PARTITIONS: 2 }, { workers: false });
    merchantKey = (await createMerchant(sys)).key;
    member = await memberWithToken(sys);
  });
  after(async () => {
    await sys?.stop();
  });

  describe('malformed percent-encoding in the path', () => {
    it('GET /v1/members/%E0%A4%A → 400 VALIDATION_ERROR', async () => {
      expectCode(await sys.http.get('/v1/members/%E0%A4%A', { key: sys.adminKey }), 400, 'VALIDATION_ERROR');
    });

    const more: [string, () => string][] = [
      ['GET /v1/cards/%E0%A4%A (admin)', () => sys.adminKey],
      ['GET /v1/operations/%E0%A4%A (admin)', () => sys.adminKey],
      ['GET /v1/merchant/webhook-endpoints/%E0%A4%A (merchant)', () => merchantKey],
      ['GET /v1/members/%E0%A4%A (member token)', () => member.token],
      ['GET /v1/members/%ZZ (admin)', () => sys.adminKey],
    ];
    for (const [what, key] of more) {
      it(`${what} → 400 VALIDATION_ERROR`, async () => {
        const path = what.split(' ')[1]!;
        const res = await sys.http.get(path, { key: key() });
        expect(res.status, `${what}: ${res.text}`).to.not.equal(500);
        expectCode(res, 400, 'VALIDATION_ERROR', what);
      });
    }

    it('a malformed query string (?from=%E0%A4%A) → 400 VALIDATION_ERROR', async () => {
      expectCode(await sys.http.get('/v1/merchant/transactions?from=%E0%A4%A', { key: merchantKey }), 400, 'VALIDATION_ERROR');
    });
  });

  describe('impossible dates', () => {
    for (const from of ['0000-01-01T00:00:00Z', '2026-02-30T00:00:00Z', '2026-13-01T00:00:00Z', '2026-04-31T00:00:00Z']) {
      it(`GET /v1/merchant/transactions?from=${from} → 400 VALIDATION_ERROR`, async () => {
        expectCode(await sys.http.get(`/v1/merchant/transactions?from=${from}`, { key: merchantKey }), 400, 'VALIDATION_ERROR', from);
      });
    }

    it('the same dates as ?to= and on other lists → 400', async () => {
      expectCode(await sys.http.get('/v1/merchant/transactions?to=2026-02-30T00:00:00Z', { key: merchantKey }), 400, 'VALIDATION_ERROR', 'merchant to=');
      expectCode(await sys.http.get(`/v1/members/${member.member.id}/transactions?from=0000-01-01T00:00:00Z`, { key: member.token }), 400, 'VALIDATION_ERROR', 'member from=');
      expectCode(await sys.http.get('/v1/audit/events?from=2026-02-30T00:00:00Z', { key: sys.adminKey }), 400, 'VALIDATION_ERROR', 'audit from=');
    });

    it('a valid date → 200 (control)', async () => {
      for (const q of ['from=2026-01-01T00:00:00Z', 'from=2024-02-29T00:00:00Z&to=2030-01-01T00:00:00%2B08:00']) {
        const res = await sys.http.get(`/v1/merchant/transactions?${q}`, { key: merchantKey });
        expect(res.status, `${q}: ${res.text}`).to.equal(200);
        expect(res.body.data).to.be.an('array');
      }
    });
  });
});
