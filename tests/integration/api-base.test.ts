import { expect } from 'chai';
import { countHit } from '../../api/middleware/rate-limit.js';
import { createApiKey } from '../../db/queries/api-keys.js';
import type { AppError } from '../../domain/errors.js';
import { chainHash, GENESIS_HASH, type AuditFields } from '../../domain/audit-chain.js';
import { sha256 } from '../../domain/tokens.js';
import { createMember, createMerchant, memberWithToken, randomCode } from '../helpers/fixtures.js';
import { expectError, unknownKey } from '../helpers/request-checks.js';
import { startSystem, type TestSystem } from '../helpers/system.js';

describe('API base: request ids, error shape, limits, keys, audit', () => {
  let sys: TestSystem;
  before(async () => {
    sys = await startSystem({}, { workers: false });
  });
  after(async () => {
    await sys.stop();
  });

  describe('request ids', () => {
    it("echoes a sane client X-Request-Id in the header and the error's request_id", async () => {
      const res = await sys.http.get('/v1/members/nope', { key: sys.adminKey, headers: { 'x-request-id': 'pos-42:lane.3_A-1' } });
      expect(res.headers.get('x-request-id')).to.equal('pos-42:lane.3_A-1');
      expect(res.body.error.request_id).to.equal('pos-42:lane.3_A-1');
    });

    it('makes its own id for missing or unsafe client ids, different on every request', async () => {
      const a = await sys.http.get('/v1/levels', { key: sys.adminKey });
      const b = await sys.http.get('/v1/levels', { key: sys.adminKey, headers: { 'x-request-id': 'bad id\twith spaces' } });
      const c = await sys.http.get('/v1/levels', { key: sys.adminKey, headers: { 'x-request-id': 'x'.repeat(101) } });
      const ids = [a, b, c].map((r) => r.headers.get('x-request-id'));
      for (const id of ids) expect(id).to.match(/^req_[0-9a-f-]{36}$/);
      expect(new Set(ids).size).to.equal(3);
    });

    it('records the request id and caller ip with the audit event of a change', async () => {
      const res = await sys.http.post('/v1/members', { name: 'Audited' }, { key: sys.adminKey, headers: { 'x-request-id': `audit-${randomCode()}` } });
      const event = await sys.deps.db('audit_events').where({ object_id: res.body.id }).first();
      expect(event.request_id).to.equal(res.headers.get('x-request-id'));
      expect(event.ip).to.match(/127\.0\.0\.1/);
    });
  });

  describe('error shape', () => {
    it('is {error: {code, message, details, request_id}} for 400, 401, 403, 404 and 409, with no stack', async () => {
      const { merchant, key } = await createMerchant(sys);
      const answers = [
        await sys.http.post('/v1/members', { name: 'X', balance: 5 }, { key: sys.adminKey }),
        await sys.http.get('/v1/levels'),
        await sys.http.get('/v1/levels', { key }),
        await sys.http.get('/v1/merchants/00000000-0000-4000-8000-000000000000', { key: sys.adminKey }),
        await sys.http.post('/v1/merchants', { code: merchant.code, name: 'dup' }, { key: sys.adminKey }),
      ];
      expect(answers.map((r) => [r.status, r.body.error.code])).to.deep.equal([
        [400, 'VALIDATION_ERROR'],
        [401, 'UNAUTHENTICATED'],
        [403, 'FORBIDDEN'],
        [404, 'NOT_FOUND'],
        [409, 'CONFLICT'],
      ]);
      for (const res of answers) {
        expect(Object.keys(res.body)).to.deep.equal(['error']);
        expect(Object.keys(res.body.error).sort()).to.deep.equal(['code', 'details', 'message', 'request_id']);
        expect(res.body.error.message).to.be.a('string').and.not.equal('');
        expect(res.body.error.details).to.be.an('object');
        expect(res.headers.get('content-type')).to.match(/^application\/json/);
        expect(res.text).not.to.match(/at .*\.ts:\d+/);
      }
    });

    it('names every unknown field of a body in the message and in details.unknown_fields', async () => {
      const res = await sys.http.post('/v1/members', { name: 'X', status: 'active', member_no: 'M1' }, { key: sys.adminKey });
      expectError(res, 400, 'VALIDATION_ERROR', /status.*member_no|member_no.*status/);
      expect(res.body.error.details.unknown_fields).to.have.members(['status', 'member_no']);
    });

    it('reports each invalid field in details.issues', async () => {
      const res = await sys.http.post('/v1/merchants', { code: 'x', name: '' }, { key: sys.adminKey });
      expectError(res, 400, 'VALIDATION_ERROR');
      expect(res.body.error.details.issues.map((i: { field: string }) => i.field)).to.have.members(['code', 'name']);
    });

    it('answers 413 PAYLOAD_TOO_LARGE over BODY_LIMIT, 415 for non-JSON bodies and 400 for malformed JSON', async () => {
      const json = { 'content-type': 'application/json' };
      expectError(await sys.http.post('/v1/members', undefined, { key: sys.adminKey, raw: JSON.stringify({ name: 'n'.repeat(33 * 1024) }), headers: json }), 413, 'PAYLOAD_TOO_LARGE');
      expectError(await sys.http.post('/v1/members', undefined, { key: sys.adminKey, raw: '<member/>', headers: { 'content-type': 'application/xml' } }), 415, 'UNSUPPORTED_MEDIA_TYPE');
      expectError(await sys.http.post('/v1/members', undefined, { key: sys.adminKey, raw: "{'name': 'single quotes'}", headers: json }), 400, 'VALIDATION_ERROR', 'JSON');
      // Just under the limit is parsed (and then refused for its content, not its size).
      expectError(await sys.http.post('/v1/members', undefined, { key: sys.adminKey, raw: JSON.stringify({ name: 'n'.repeat(30 * 1024) }), headers: json }), 400, 'VALIDATION_ERROR', 'name');
    });

    it('sends helmet headers', async () => {
      const res = await sys.http.get('/v1/levels', { key: sys.adminKey });
      expect(res.headers.get('x-content-type-options')).to.equal('nosniff');
      expect(res.headers.get('x-powered-by')).to.equal(null);
    });
  });

  describe('keys', () => {
    it('refuses a revoked merchant key with 401 from the moment it is revoked', async () => {
      const { merchant, key, keyId } = await createMerchant(sys);
      expectError(await sys.http.get('/v1/levels', { key }), 403, 'FORBIDDEN');
      await sys.http.delete(`/v1/merchants/${merchant.id}/api-keys/${keyId}`, { key: sys.adminKey });
      expectError(await sys.http.get('/v1/levels', { key }), 401, 'UNAUTHENTICATED');
    });

    it('refuses an expired member token with 401', async () => {
      const { member, token } = await memberWithToken(sys);
      expect((await sys.http.get(`/v1/members/${member.id}`, { key: token })).status).to.equal(200);
      await sys.deps.db('api_keys').where({ key_hash: sha256(token) }).update({ expires_at: sys.deps.db.raw("now() - interval '1 second'") });
      expectError(await sys.http.get(`/v1/members/${member.id}`, { key: token }), 401, 'UNAUTHENTICATED');
    });

    it('refuses keys with an unknown prefix, a wrong scheme or junk with 401', async () => {
      const { token } = await memberWithToken(sys);
      for (const authorization of [`Basic ${token}`, `Bearer ${unknownKey('mps_xx_')}`, `Bearer ${unknownKey('mps_mt_')}`, 'Bearer ', `Bearer ${token} extra`, token]) {
        expectError(await sys.http.get('/v1/levels', { headers: { authorization } }), 401, 'UNAUTHENTICATED');
      }
    });

    it('knows a suspended key from an active one: a key with status suspended is 401', async () => {
      const { key, row } = await createApiKey(sys.deps.db, { role: 'admin', name: 'to suspend' });
      expect((await sys.http.get('/v1/levels', { key })).status).to.equal(200);
      await sys.deps.db('api_keys').where({ id: row.id }).update({ status: 'suspended' });
      expectError(await sys.http.get('/v1/levels', { key }), 401, 'UNAUTHENTICATED');
    });
  });

  describe('rate limit per key (RATE_LIMIT_PER_KEY_PER_MIN=5)', () => {
    let limited: TestSystem;
    before(async () => {
      limited = await startSystem({ RATE_LIMIT_PER_KEY_PER_MIN: 5 }, { workers: false });
    });
    after(async () => {
      await limited.stop();
    });

    it('answers 429 RATE_LIMITED with Retry-After once a key passes its budget, and other keys go on', async () => {
      const { key } = await createApiKey(limited.deps.db, { role: 'admin', name: 'busy' });
      const { key: other } = await createApiKey(limited.deps.db, { role: 'admin', name: 'calm' });
      const limit = limited.config.RATE_LIMIT_PER_KEY_PER_MIN;
      // The first `limit` requests fit any window; within 2 × limit + 1 one must be limited, even
      // if a minute boundary splits them over two fixed windows.
      for (let i = 0; i < limit; i++) expect((await limited.http.get('/v1/levels', { key })).status).to.equal(200);
      let refused;
      for (let i = 0; i <= limit && !refused; i++) {
        const res = await limited.http.get('/v1/levels', { key });
        if (res.status === 429) refused = res;
      }
      expect(refused, 'a request was rate limited').to.not.equal(undefined);
      expectError(refused!, 429, 'RATE_LIMITED');
      expect(refused!.body.error.details.bucket).to.equal('key');
      const retryAfter = Number(refused!.headers.get('retry-after'));
      expect(retryAfter).to.be.within(1, 60);
      expect(refused!.body.error.details.retry_after_s).to.equal(retryAfter);
      expect((await limited.http.get('/v1/levels', { key: other })).status).to.equal(200);
    });

    it('counts each of many concurrent hits once (they share one Redis call): `limit` pass, the rest are RATE_LIMITED', async () => {
      const id = randomCode('RL');
      const results = await Promise.allSettled(Array.from({ length: 12 }, () => countHit(limited.deps, 'concurrent', 5, id)));
      const keys = await limited.deps.redis.keys(`${limited.config.QUEUE_PREFIX}:rl:concurrent:${id}:*`);
      const perWindow = (await Promise.all(keys.map((k) => limited.deps.redis.get(k)))).map(Number);
      expect(perWindow.reduce((sum, n) => sum + n, 0), 'every hit counted once').to.equal(12);
      // 5 pass in a window (one window, unless the hits straddled a minute boundary).
      expect(results.filter((r) => r.status === 'fulfilled').length).to.equal(perWindow.reduce((sum, n) => sum + Math.min(n, 5), 0));
      for (const r of results) if (r.status === 'rejected') expect((r.reason as AppError).code).to.equal('RATE_LIMITED');
      expect(await limited.deps.redis.pttl(keys[0]!)).to.be.within(1, 61_000);
    });

    it('refuses a limited write without making any change', async () => {
      const { key } = await createApiKey(limited.deps.db, { role: 'admin', name: 'writer' });
      const limit = limited.config.RATE_LIMIT_PER_KEY_PER_MIN;
      const codes: string[] = [];
      const statuses: number[] = [];
      for (let i = 0; i < 2 * limit + 1; i++) {
        const code = randomCode('RL');
        codes.push(code);
        statuses.push((await limited.http.post('/v1/merchants', { code, name: 'Limited' }, { key })).status);
      }
      expect(statuses).to.include(429);
      const created = await limited.deps.db('merchants').whereIn('code', codes).pluck('code');
      expect(created.sort()).to.deep.equal(codes.filter((_, i) => statuses[i] === 201).sort());
      expect(created.length).to.equal(statuses.filter((s) => s === 201).length);
    });
  });

  describe('audit chain', () => {
    type AuditRow = Omit<AuditFields, 'created_at'> & { created_at: Date; prev_hash: string; hash: string };

    it('links each state change to the event before it: hash = SHA-256(prev_hash ‖ canonical event)', async () => {
      const member = await createMember(sys);
      const res = await sys.http.post(`/v1/members/${member.id}/suspend`, { reason: 'chain test' }, { key: sys.adminKey });
      const event: AuditRow = await sys.deps.db('audit_events').where({ object_id: member.id, action: 'member.suspend' }).first();
      const actor = await sys.deps.db('api_keys').where({ key_hash: sha256(sys.adminKey) }).first();
      expect(event).to.include({ actor_type: 'api_key', actor_id: actor.id, role: 'admin', object_type: 'member', request_id: res.headers.get('x-request-id') });
      expect(event.context).to.deep.equal({ reason: 'chain test' });

      expect(event.chain).to.equal('main');
      const previous: AuditRow | undefined = await sys.deps.db('audit_events').where({ chain: event.chain }).andWhere('id', '<', event.id).orderBy('id', 'desc').first();
      expect(event.prev_hash).to.equal(previous ? previous.hash : GENESIS_HASH);
      const { prev_hash: prevHash, hash, ...fields } = event;
      expect(hash).to.equal(chainHash(prevHash, { ...fields, created_at: event.created_at.toISOString() }));
    });

    it('keeps every chain (main, and one per card partition) unbroken across many changes', async () => {
      for (let i = 0; i < 3; i++) await createMerchant(sys);
      const rows: AuditRow[] = await sys.deps.db('audit_events').orderBy('id');
      expect(rows.length).to.be.at.least(6);
      const heads = new Map<string, string>();
      for (const row of rows) {
        const { prev_hash: prevHash, hash, ...fields } = row;
        expect(prevHash, `prev_hash of event ${row.id} in chain ${row.chain}`).to.equal(heads.get(row.chain) ?? GENESIS_HASH);
        expect(hash, `hash of event ${row.id}`).to.equal(chainHash(prevHash, { ...fields, created_at: row.created_at.toISOString() }));
        heads.set(row.chain, hash);
      }
    });

    it('writes no audit event for a refused change', async () => {
      const before = await sys.deps.db('audit_events').max({ id: 'id' }).first();
      await sys.http.post('/v1/merchants', { code: 'bad code', name: 'X' }, { key: sys.adminKey });
      await sys.http.post('/v1/members', { name: 'X' }, { key: (await createMerchant(sys)).key });
      const after = await sys.deps.db('audit_events').max({ id: 'id' }).first();
      // createMerchant itself writes two events (merchant, key); the refused requests write none.
      expect(await sys.deps.db('audit_events').where('id', '>', before!.id).orderBy('id').pluck('action')).to.deep.equal(['merchant.create', 'merchant.api_key_create']);
      expect(after!.id).to.be.above(before!.id);
    });
  });
});
