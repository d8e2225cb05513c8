import { expect } from 'chai';
import { sha256 } from '../../domain/tokens.js';
import { countRows, createAppKey, createMerchant, lastAudit, memberWithToken, randomCode } from '../helpers/fixtures.js';
import { expectError, itRefusesMalformedRequests } from '../helpers/request-checks.js';
import { startSystem, type TestSystem } from '../helpers/system.js';

const NO_SUCH_ID = '00000000-0000-4000-8000-000000000000';

describe('merchants API', () => {
  let sys: TestSystem;
  let appKey: string;
  let memberKey: string;
  before(async () => {
    sys = await startSystem({}, { workers: false });
    appKey = await createAppKey(sys);
    memberKey = (await memberWithToken(sys)).token;
  });
  after(async () => {
    await sys.stop();
  });

  const merchantRow = (id: string) => sys.deps.db('merchants').where({ id }).first();

  describe('POST /v1/merchants', () => {
    it('creates a merchant with the documented fields, a fee rate string with 4 decimals, and an audit event', async () => {
      const code = randomCode('SHOP_');
      const res = await sys.http.post('/v1/merchants', { code, name: '好喝茶飲 Taipei', fee_rate: 0.006, settlement_mode: 't_plus_1' }, { key: sys.adminKey });
      expect(res.status).to.equal(201);
      expect(res.body).to.include({ code, name: '好喝茶飲 Taipei', fee_rate: '0.0060', settlement_mode: 't_plus_1', status: 'active' });
      expect(res.body.id).to.match(/^[0-9a-f-]{36}$/);
      expect(Date.parse(res.body.created_at)).to.be.closeTo(Date.now(), 60_000);
      const row = await merchantRow(res.body.id);
      expect(row).to.include({ code, status: 'active', fee_rate: '0.0060' });
      const audit = await lastAudit(sys, 'merchant', res.body.id);
      expect(audit).to.include({ action: 'merchant.create', actor_type: 'api_key', role: 'admin', request_id: res.headers.get('x-request-id') });
    });

    it('defaults fee_rate to "0.0000" and settlement_mode to t_plus_1', async () => {
      const res = await sys.http.post('/v1/merchants', { code: randomCode(), name: 'Plain' }, { key: sys.adminKey });
      expect(res.status).to.equal(201);
      expect(res.body).to.include({ fee_rate: '0.0000', settlement_mode: 't_plus_1' });
    });

    for (const [given, shown] of [
      ['0.0125', '0.0125'],
      ['1', '1.0000'],
      [0, '0.0000'],
      [0.03, '0.0300'],
    ] as const) {
      it(`takes fee_rate ${JSON.stringify(given)} as "${shown}"`, async () => {
        const res = await sys.http.post('/v1/merchants', { code: randomCode(), name: 'Rate', fee_rate: given }, { key: sys.adminKey });
        expect(res.status, JSON.stringify(res.body)).to.equal(201);
        expect(res.body.fee_rate).to.equal(shown);
        expect((await merchantRow(res.body.id)).fee_rate).to.equal(shown);
      });
    }

    it('answers 409 CONFLICT for a code that exists, and keeps the first merchant as it was', async () => {
      const { merchant } = await createMerchant(sys, { name: 'First' });
      const res = await sys.http.post('/v1/merchants', { code: merchant.code, name: 'Second' }, { key: sys.adminKey });
      expectError(res, 409, 'CONFLICT', merchant.code);
      expect(await countRows(sys, 'merchants', { code: merchant.code })).to.equal(1);
      expect((await merchantRow(merchant.id)).name).to.equal('First');
    });

    const invalid: [string, Record<string, unknown>, string][] = [
      ['a missing code', { name: 'X' }, 'code'],
      ['a missing name', { code: 'ABC' }, 'name'],
      ['an empty name', { code: 'ABC', name: '   ' }, 'name'],
      ['a name of 201 characters', { code: 'ABC', name: 'n'.repeat(201) }, 'name'],
      ['a name that is a number', { code: 'ABC', name: 42 }, 'name'],
      ['a lower-case code', { code: 'shop1', name: 'X' }, 'code'],
      ['a code of 2 characters', { code: 'AB', name: 'X' }, 'code'],
      ['a code of 33 characters', { code: 'A'.repeat(33), name: 'X' }, 'code'],
      ['a code with a space', { code: 'MY SHOP', name: 'X' }, 'code'],
      ['a code that is a number', { code: 12345, name: 'X' }, 'code'],
      ['a fee_rate with 5 decimals', { code: 'ABC', name: 'X', fee_rate: '0.00001' }, 'fee_rate'],
      ['a fee_rate over 1', { code: 'ABC', name: 'X', fee_rate: 1.5 }, 'fee_rate'],
      ['a negative fee_rate', { code: 'ABC', name: 'X', fee_rate: '-0.01' }, 'fee_rate'],
      ['a fee_rate in exponent form', { code: 'ABC', name: 'X', fee_rate: '6e-3' }, 'fee_rate'],
      ['a boolean fee_rate', { code: 'ABC', name: 'X', fee_rate: true }, 'fee_rate'],
      ['another settlement_mode', { code: 'ABC', name: 'X', settlement_mode: 'daily' }, 'settlement_mode'],
      ['the server-owned status', { code: 'ABC', name: 'X', status: 'active' }, 'status'],
      ['the server-owned id', { code: 'ABC', name: 'X', id: NO_SUCH_ID }, 'id'],
      ['an unknown field', { code: 'ABC', name: 'X', colour: 'red' }, 'colour'],
    ];
    for (const [what, body, field] of invalid) {
      it(`refuses ${what} with 400 VALIDATION_ERROR naming ${field}, creating nothing`, async () => {
        const before = await countRows(sys, 'merchants');
        const res = await sys.http.post('/v1/merchants', { ...body, ...(body.code === 'ABC' ? { code: randomCode() } : {}) }, { key: sys.adminKey });
        expectError(res, 400, 'VALIDATION_ERROR', field);
        expect(await countRows(sys, 'merchants')).to.equal(before);
      });
    }

    for (const role of ['merchant', 'app', 'member'] as const) {
      it(`refuses a ${role} key with 403 FORBIDDEN, creating nothing`, async () => {
        const key = role === 'merchant' ? (await createMerchant(sys)).key : role === 'app' ? appKey : memberKey;
        const code = randomCode();
        const res = await sys.http.post('/v1/merchants', { code, name: 'Sneaky' }, { key });
        expectError(res, 403, 'FORBIDDEN');
        expect(await countRows(sys, 'merchants', { code })).to.equal(0);
      });
    }

    itRefusesMalformedRequests({ sys: () => sys, method: 'POST', path: () => '/v1/merchants', key: () => sys.adminKey, state: () => countRows(sys, 'merchants') });
  });

  describe('GET /v1/merchants/:id', () => {
    it('returns the merchant to an admin', async () => {
      const { merchant } = await createMerchant(sys, { fee_rate: '0.006' });
      const res = await sys.http.get(`/v1/merchants/${merchant.id}`, { key: sys.adminKey });
      expect(res.status).to.equal(200);
      expect(res.body).to.deep.equal(merchant);
      expect(res.body.fee_rate).to.equal('0.0060');
    });

    it('answers 404 for an unknown id and for an id that is not a UUID', async () => {
      expectError(await sys.http.get(`/v1/merchants/${NO_SUCH_ID}`, { key: sys.adminKey }), 404, 'NOT_FOUND');
      expectError(await sys.http.get('/v1/merchants/not-a-uuid', { key: sys.adminKey }), 404, 'NOT_FOUND');
      expectError(await sys.http.get("/v1/merchants/1'%20OR%20'1'='1", { key: sys.adminKey }), 404, 'NOT_FOUND');
    });

    it('is for admins only: a merchant reading even itself gets 403, app and member keys too', async () => {
      const { merchant, key } = await createMerchant(sys);
      expectError(await sys.http.get(`/v1/merchants/${merchant.id}`, { key }), 403, 'FORBIDDEN');
      expectError(await sys.http.get(`/v1/merchants/${merchant.id}`, { key: appKey }), 403, 'FORBIDDEN');
      expectError(await sys.http.get(`/v1/merchants/${merchant.id}`, { key: memberKey }), 403, 'FORBIDDEN');
      expectError(await sys.http.get(`/v1/merchants/${merchant.id}`), 401, 'UNAUTHENTICATED');
    });
  });

  describe('POST /v1/merchants/:id/suspend and /reactivate', () => {
    it('suspends an active merchant and reactivates it, each with an audit event', async () => {
      const { merchant } = await createMerchant(sys);
      const res = await sys.http.post(`/v1/merchants/${merchant.id}/suspend`, { reason: 'chargeback spike' }, { key: sys.adminKey });
      expect(res.status).to.equal(200);
      expect(res.body).to.include({ id: merchant.id, status: 'suspended' });
      expect((await merchantRow(merchant.id)).status).to.equal('suspended');
      const audit = await lastAudit(sys, 'merchant', merchant.id);
      expect(audit.action).to.equal('merchant.suspend');
      expect(audit.context).to.deep.equal({ reason: 'chargeback spike' });

      const back = await sys.http.post(`/v1/merchants/${merchant.id}/reactivate`, {}, { key: sys.adminKey });
      expect(back.status).to.equal(200);
      expect(back.body.status).to.equal('active');
      expect((await merchantRow(merchant.id)).status).to.equal('active');
      expect((await lastAudit(sys, 'merchant', merchant.id)).action).to.equal('merchant.reactivate');
    });

    it('answers 409 CONFLICT to suspending twice or reactivating an active merchant, without an audit event', async () => {
      const { merchant } = await createMerchant(sys);
      expectError(await sys.http.post(`/v1/merchants/${merchant.id}/reactivate`, {}, { key: sys.adminKey }), 409, 'CONFLICT', 'active');
      await sys.http.post(`/v1/merchants/${merchant.id}/suspend`, {}, { key: sys.adminKey });
      const events = await countRows(sys, 'audit_events', { object_id: merchant.id });
      expectError(await sys.http.post(`/v1/merchants/${merchant.id}/suspend`, {}, { key: sys.adminKey }), 409, 'CONFLICT', 'suspended');
      expect(await countRows(sys, 'audit_events', { object_id: merchant.id })).to.equal(events);
    });

    it("keeps a suspended merchant's keys authenticating (refusing money is the charge's job)", async () => {
      const { merchant, key } = await createMerchant(sys);
      await sys.http.post(`/v1/merchants/${merchant.id}/suspend`, {}, { key: sys.adminKey });
      // 403 (a known key on an admin route), not 401: the key still authenticates.
      expectError(await sys.http.get(`/v1/merchants/${merchant.id}`, { key }), 403, 'FORBIDDEN');
    });

    it('answers 404 for unknown ids, 403 for other roles, 400 for unknown fields, and changes nothing', async () => {
      const { merchant, key } = await createMerchant(sys);
      expectError(await sys.http.post(`/v1/merchants/${NO_SUCH_ID}/suspend`, {}, { key: sys.adminKey }), 404, 'NOT_FOUND');
      expectError(await sys.http.post('/v1/merchants/nope/suspend', {}, { key: sys.adminKey }), 404, 'NOT_FOUND');
      expectError(await sys.http.post(`/v1/merchants/${merchant.id}/suspend`, {}, { key }), 403, 'FORBIDDEN');
      expectError(await sys.http.post(`/v1/merchants/${merchant.id}/suspend`, {}, { key: appKey }), 403, 'FORBIDDEN');
      expectError(await sys.http.post(`/v1/merchants/${merchant.id}/suspend`, { status: 'suspended' }, { key: sys.adminKey }), 400, 'VALIDATION_ERROR', 'status');
      expectError(await sys.http.post(`/v1/merchants/${merchant.id}/suspend`, { reason: 7 }, { key: sys.adminKey }), 400, 'VALIDATION_ERROR', 'reason');
      expect((await merchantRow(merchant.id)).status).to.equal('active');
      expect(await countRows(sys, 'audit_events', { object_id: merchant.id, action: 'merchant.suspend' })).to.equal(0);
    });

    let target = '';
    before(async () => {
      target = (await createMerchant(sys)).merchant.id;
    });
    itRefusesMalformedRequests({
      sys: () => sys,
      method: 'POST',
      path: () => `/v1/merchants/${target}/suspend`,
      key: () => sys.adminKey,
      state: async () => (await merchantRow(target)).status,
    });
  });

  describe('POST /v1/merchants/:id/api-keys', () => {
    it('creates a merchant key shown once, stored only as its hash, that authenticates', async () => {
      const { merchant } = await createMerchant(sys);
      const res = await sys.http.post(`/v1/merchants/${merchant.id}/api-keys`, { name: 'POS lane 3' }, { key: sys.adminKey });
      expect(res.status).to.equal(201);
      expect(res.body.key).to.match(/^mps_mk_[A-Za-z0-9_-]{43}$/);
      expect(res.body.prefix).to.equal(res.body.key.slice(0, 13));
      expect(res.body).to.include({ name: 'POS lane 3', merchant_id: merchant.id, status: 'active' });
      const row = await sys.deps.db('api_keys').where({ id: res.body.id }).first();
      expect(row).to.include({ role: 'merchant', merchant_id: merchant.id, key_hash: sha256(res.body.key), prefix: res.body.prefix });
      expect(JSON.stringify(row)).not.to.include(res.body.key);
      expect((await lastAudit(sys, 'api_key', res.body.id)).action).to.equal('merchant.api_key_create');
      // Authenticates: a known merchant key on an admin route is 403, an unknown one 401.
      expectError(await sys.http.get('/v1/levels', { key: res.body.key }), 403, 'FORBIDDEN');
    });

    it('answers 404 for an unknown merchant and creates no key', async () => {
      const before = await countRows(sys, 'api_keys');
      expectError(await sys.http.post(`/v1/merchants/${NO_SUCH_ID}/api-keys`, {}, { key: sys.adminKey }), 404, 'NOT_FOUND');
      expect(await countRows(sys, 'api_keys')).to.equal(before);
    });

    it('refuses unknown fields, a role or merchant_id in the body, and non-admin callers, creating no key', async () => {
      const { merchant, key } = await createMerchant(sys);
      const before = await countRows(sys, 'api_keys', { merchant_id: merchant.id });
      expectError(await sys.http.post(`/v1/merchants/${merchant.id}/api-keys`, { role: 'admin' }, { key: sys.adminKey }), 400, 'VALIDATION_ERROR', 'role');
      expectError(await sys.http.post(`/v1/merchants/${merchant.id}/api-keys`, { merchant_id: NO_SUCH_ID }, { key: sys.adminKey }), 400, 'VALIDATION_ERROR', 'merchant_id');
      expectError(await sys.http.post(`/v1/merchants/${merchant.id}/api-keys`, { name: ['x'] }, { key: sys.adminKey }), 400, 'VALIDATION_ERROR', 'name');
      expectError(await sys.http.post(`/v1/merchants/${merchant.id}/api-keys`, {}, { key }), 403, 'FORBIDDEN');
      expectError(await sys.http.post(`/v1/merchants/${merchant.id}/api-keys`, {}, { key: appKey }), 403, 'FORBIDDEN');
      expect(await countRows(sys, 'api_keys', { merchant_id: merchant.id })).to.equal(before);
    });

    let target = '';
    before(async () => {
      target = (await createMerchant(sys)).merchant.id;
    });
    itRefusesMalformedRequests({
      sys: () => sys,
      method: 'POST',
      path: () => `/v1/merchants/${target}/api-keys`,
      key: () => sys.adminKey,
      state: () => countRows(sys, 'api_keys', { merchant_id: target }),
    });
  });

  describe('DELETE /v1/merchants/:id/api-keys/:key_id', () => {
    it('revokes the key: status revoked, revoked_at set, and the key no longer authenticates', async () => {
      const { merchant, key, keyId } = await createMerchant(sys);
      const res = await sys.http.delete(`/v1/merchants/${merchant.id}/api-keys/${keyId}`, { key: sys.adminKey });
      expect(res.status).to.equal(200);
      expect(res.body).to.include({ id: keyId, status: 'revoked' });
      expect(Date.parse(res.body.revoked_at)).to.be.closeTo(Date.now(), 60_000);
      const row = await sys.deps.db('api_keys').where({ id: keyId }).first();
      expect(row.status).to.equal('revoked');
      expect(row.revoked_at).to.be.instanceOf(Date);
      expectError(await sys.http.get('/v1/levels', { key }), 401, 'UNAUTHENTICATED');
      expect((await lastAudit(sys, 'api_key', keyId)).action).to.equal('merchant.api_key_revoke');
    });

    it('is idempotent: revoking again answers the same revocation and writes no second audit event', async () => {
      const { merchant, keyId } = await createMerchant(sys);
      const first = await sys.http.delete(`/v1/merchants/${merchant.id}/api-keys/${keyId}`, { key: sys.adminKey });
      const second = await sys.http.delete(`/v1/merchants/${merchant.id}/api-keys/${keyId}`, { key: sys.adminKey });
      expect(second.status).to.equal(200);
      expect(second.body.revoked_at).to.equal(first.body.revoked_at);
      expect(await countRows(sys, 'audit_events', { object_id: keyId, action: 'merchant.api_key_revoke' })).to.equal(1);
    });

    it("answers 404 for another merchant's key, an unknown key and ids that are not UUIDs, leaving the key active", async () => {
      const a = await createMerchant(sys);
      const b = await createMerchant(sys);
      expectError(await sys.http.delete(`/v1/merchants/${b.merchant.id}/api-keys/${a.keyId}`, { key: sys.adminKey }), 404, 'NOT_FOUND');
      expectError(await sys.http.delete(`/v1/merchants/${a.merchant.id}/api-keys/${NO_SUCH_ID}`, { key: sys.adminKey }), 404, 'NOT_FOUND');
      expectError(await sys.http.delete(`/v1/merchants/${a.merchant.id}/api-keys/xyz`, { key: sys.adminKey }), 404, 'NOT_FOUND');
      expect((await sys.deps.db('api_keys').where({ id: a.keyId }).first()).status).to.equal('active');
      expectError(await sys.http.get('/v1/levels', { key: a.key }), 403, 'FORBIDDEN');
    });

    it('refuses the merchant itself and app keys with 403, leaving the key active', async () => {
      const { merchant, key, keyId } = await createMerchant(sys);
      expectError(await sys.http.delete(`/v1/merchants/${merchant.id}/api-keys/${keyId}`, { key }), 403, 'FORBIDDEN');
      expectError(await sys.http.delete(`/v1/merchants/${merchant.id}/api-keys/${keyId}`, { key: appKey }), 403, 'FORBIDDEN');
      expect((await sys.deps.db('api_keys').where({ id: keyId }).first()).status).to.equal('active');
    });

    let target = { merchant: '', key: '' };
    before(async () => {
      const m = await createMerchant(sys);
      target = { merchant: m.merchant.id, key: m.keyId };
    });
    itRefusesMalformedRequests({
      sys: () => sys,
      method: 'DELETE',
      path: () => `/v1/merchants/${target.merchant}/api-keys/${target.key}`,
      key: () => sys.adminKey,
      state: async () => (await sys.deps.db('api_keys').where({ id: target.key }).first()).status,
    });
  });
});
