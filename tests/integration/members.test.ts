import { randomBytes } from 'node:crypto';
import { expect } from 'chai';
import { sha256 } from '../../domain/tokens.js';
import { bind, countRows, createAppKey, createMember, createMerchant, issueCard, lastAudit, memberToken, memberWithToken, randomEmail, randomPhone } from '../helpers/fixtures.js';
import { expectError, itRefusesMalformedRequests } from '../helpers/request-checks.js';
import { startSystem, type TestSystem } from '../helpers/system.js';

const NO_SUCH_ID = '00000000-0000-4000-8000-000000000000';
const externalId = () => `U${randomBytes(8).toString('hex')}`;

describe('members API', () => {
  let sys: TestSystem;
  let appKey: string;
  let merchantKey: string;
  before(async () => {
    sys = await startSystem({}, { workers: false });
    appKey = await createAppKey(sys);
    merchantKey = (await createMerchant(sys)).key;
  });
  after(async () => {
    await sys.stop();
  });

  const memberRow = (id: string) => sys.deps.db('member_profiles').where({ id }).first();

  describe('POST /v1/members', () => {
    it('creates a member with its standard card, its owner binding, its identity and an audit event', async () => {
      const ext = externalId();
      const [phone, email] = [randomPhone(), randomEmail('ming')];
      const res = await sys.http.post('/v1/members', { name: '張小明', phone, email, identity: { provider: 'line', external_id: ext } }, { key: sys.adminKey });
      expect(res.status).to.equal(201);
      const m = res.body;
      expect(m).to.include({ name: '張小明', phone, email, status: 'active' });
      expect(m.member_no).to.match(/^M\d{6,}$/);
      expect(Date.parse(m.created_at)).to.be.closeTo(Date.now(), 60_000);
      expect(m.cards).to.have.length(1);
      expect(m.cards[0]).to.include({ type: 'standard', status: 'active', owner_member_id: m.id, balance: '0.00', points: 0, level: 0, discount_rate: '1.000', fixed_discount: null, expires_at: null });
      expect(m.cards[0].card_no).to.match(/^8801\d{12}$/);
      expect(m.identities).to.have.length(1);
      expect(m.identities[0]).to.include({ provider: 'line', external_id: ext });

      const binding = await sys.deps.db('card_bindings').where({ card_id: m.cards[0].id }).first();
      expect(binding).to.include({ member_id: m.id, role: 'owner' });
      expect(await countRows(sys, 'member_cards', { owner_member_id: m.id })).to.equal(1);
      const audit = await lastAudit(sys, 'member', m.id);
      expect(audit).to.include({ action: 'member.create', role: 'admin' });
      expect(audit.context).to.deep.include({ card_id: m.cards[0].id, identity_provider: 'line' });
      // PII belongs in the member row, not in the audit trail.
      expect(JSON.stringify(audit)).not.to.include(phone);
    });

    it('works for app keys, and with only a name', async () => {
      const res = await sys.http.post('/v1/members', { name: 'Mia' }, { key: appKey });
      expect(res.status).to.equal(201);
      expect(res.body).to.include({ name: 'Mia', phone: null, email: null });
      expect(res.body.identities).to.deep.equal([]);
      expect(res.body.cards.map((c: { type: string }) => c.type)).to.deep.equal(['standard']);
      expect((await lastAudit(sys, 'member', res.body.id)).role).to.equal('app');
    });

    it('answers 409 CONFLICT for an identity another member holds, and rolls the whole member back', async () => {
      const ext = externalId();
      await createMember(sys, { identity: { provider: 'wechat', external_id: ext } });
      const [members, cards] = [await countRows(sys, 'member_profiles'), await countRows(sys, 'member_cards')];
      const res = await sys.http.post('/v1/members', { name: 'Copy', identity: { provider: 'wechat', external_id: ext } }, { key: sys.adminKey });
      expectError(res, 409, 'CONFLICT');
      expect(await countRows(sys, 'member_profiles')).to.equal(members);
      expect(await countRows(sys, 'member_cards')).to.equal(cards);
    });

    const invalid: [string, Record<string, unknown>, string][] = [
      ['a missing name', { phone: '0988123456' }, 'name'],
      ['a blank name', { name: '  ' }, 'name'],
      ['a name of 101 characters', { name: 'x'.repeat(101) }, 'name'],
      ['a name that is a number', { name: 7 }, 'name'],
      ['a phone with letters', { name: 'A', phone: 'call me' }, 'phone'],
      ['an email without @', { name: 'A', email: 'mia.example.com' }, 'email'],
      ['an identity without external_id', { name: 'A', identity: { provider: 'line' } }, 'identity.external_id'],
      ['an identity with an upper-case provider', { name: 'A', identity: { provider: 'LINE', external_id: 'x' } }, 'identity.provider'],
      ['an identity that is a string', { name: 'A', identity: 'line:x' }, 'identity'],
      ['an unknown field inside identity', { name: 'A', identity: { provider: 'line', external_id: 'x', verified: true } }, 'identity.verified'],
      ['the server-owned status', { name: 'A', status: 'active' }, 'status'],
      ['the server-owned member_no', { name: 'A', member_no: 'M1' }, 'member_no'],
      ['cards', { name: 'A', cards: [] }, 'cards'],
    ];
    for (const [what, body, field] of invalid) {
      it(`refuses ${what} with 400 VALIDATION_ERROR naming ${field}, creating nothing`, async () => {
        const before = [await countRows(sys, 'member_profiles'), await countRows(sys, 'member_cards')];
        expectError(await sys.http.post('/v1/members', body, { key: sys.adminKey }), 400, 'VALIDATION_ERROR', field);
        expect([await countRows(sys, 'member_profiles'), await countRows(sys, 'member_cards')]).to.deep.equal(before);
      });
    }

    it('refuses merchant keys and member tokens with 403, creating nothing', async () => {
      const { token } = await memberWithToken(sys);
      const before = await countRows(sys, 'member_profiles');
      expectError(await sys.http.post('/v1/members', { name: 'X' }, { key: merchantKey }), 403, 'FORBIDDEN');
      expectError(await sys.http.post('/v1/members', { name: 'X' }, { key: token }), 403, 'FORBIDDEN');
      expect(await countRows(sys, 'member_profiles')).to.equal(before);
    });

    itRefusesMalformedRequests({ sys: () => sys, method: 'POST', path: () => '/v1/members', key: () => sys.adminKey, state: () => countRows(sys, 'member_profiles') });
  });

  describe('GET /v1/members/:id', () => {
    it('shows admins and apps the member with its cards and identities', async () => {
      const m = await createMember(sys, { email: randomEmail('a'), identity: { provider: 'alipay', external_id: externalId() } });
      for (const key of [sys.adminKey, appKey]) {
        const res = await sys.http.get(`/v1/members/${m.id}`, { key });
        expect(res.status).to.equal(200);
        expect(res.body).to.deep.equal(m);
      }
    });

    it("shows a member itself, with the cards it owns and those it is bound to, each with its role", async () => {
      const owner = await createMember(sys);
      const shared = await issueCard(sys, { type: 'prepaid', ownerMemberId: owner.id });
      const { member, token, standardCard } = await memberWithToken(sys);
      await bind(sys, { key: token, cardNo: shared.card_no, role: 'viewer' });
      const res = await sys.http.get(`/v1/members/${member.id}`, { key: token });
      expect(res.status).to.equal(200);
      const cards = Object.fromEntries(res.body.cards.map((c: { id: string; role: string }) => [c.id, c.role]));
      expect(cards).to.deep.equal({ [standardCard.id]: 'owner', [shared.id]: 'viewer' });
    });

    it('answers 404 to a member token reading another member, and for unknown or malformed ids', async () => {
      const other = await createMember(sys);
      const { token } = await memberWithToken(sys);
      expectError(await sys.http.get(`/v1/members/${other.id}`, { key: token }), 404, 'NOT_FOUND');
      expectError(await sys.http.get(`/v1/members/${NO_SUCH_ID}`, { key: sys.adminKey }), 404, 'NOT_FOUND');
      expectError(await sys.http.get('/v1/members/123', { key: sys.adminKey }), 404, 'NOT_FOUND');
    });

    it('refuses merchant keys with 403 and no key with 401', async () => {
      const m = await createMember(sys);
      expectError(await sys.http.get(`/v1/members/${m.id}`, { key: merchantKey }), 403, 'FORBIDDEN');
      expectError(await sys.http.get(`/v1/members/${m.id}`), 401, 'UNAUTHENTICATED');
    });
  });

  describe('POST /v1/members/:id/identities', () => {
    it('binds an external identity, shown on the member, with an audit event', async () => {
      const m = await createMember(sys);
      const ext = externalId();
      const res = await sys.http.post(`/v1/members/${m.id}/identities`, { provider: 'line', external_id: ext }, { key: appKey });
      expect(res.status).to.equal(201);
      expect(res.body).to.include({ provider: 'line', external_id: ext, member_id: m.id });
      const read = await sys.http.get(`/v1/members/${m.id}`, { key: sys.adminKey });
      expect(read.body.identities.map((i: { external_id: string }) => i.external_id)).to.deep.equal([ext]);
      expect((await lastAudit(sys, 'member', m.id)).action).to.equal('member.identity_add');
    });

    it('answers 409 for a second identity of one provider, and for an identity another member holds', async () => {
      const a = await createMember(sys, { identity: { provider: 'line', external_id: externalId() } });
      const b = await createMember(sys);
      const taken = a.identities[0]!.external_id;
      expectError(await sys.http.post(`/v1/members/${a.id}/identities`, { provider: 'line', external_id: externalId() }, { key: sys.adminKey }), 409, 'CONFLICT');
      expectError(await sys.http.post(`/v1/members/${b.id}/identities`, { provider: 'line', external_id: taken }, { key: sys.adminKey }), 409, 'CONFLICT');
      expect(await countRows(sys, 'member_external_identities', { member_id: a.id })).to.equal(1);
      expect(await countRows(sys, 'member_external_identities', { member_id: b.id })).to.equal(0);
      // The same external id under another provider is another identity.
      const res = await sys.http.post(`/v1/members/${b.id}/identities`, { provider: 'wechat', external_id: taken }, { key: sys.adminKey });
      expect(res.status).to.equal(201);
    });

    it('answers 404 for an unknown member and 400 for bad bodies, adding nothing', async () => {
      const m = await createMember(sys);
      expectError(await sys.http.post(`/v1/members/${NO_SUCH_ID}/identities`, { provider: 'line', external_id: 'x' }, { key: sys.adminKey }), 404, 'NOT_FOUND');
      expectError(await sys.http.post(`/v1/members/${m.id}/identities`, { external_id: 'x' }, { key: sys.adminKey }), 400, 'VALIDATION_ERROR', 'provider');
      expectError(await sys.http.post(`/v1/members/${m.id}/identities`, { provider: 'line' }, { key: sys.adminKey }), 400, 'VALIDATION_ERROR', 'external_id');
      expectError(await sys.http.post(`/v1/members/${m.id}/identities`, { provider: 'line', external_id: 5 }, { key: sys.adminKey }), 400, 'VALIDATION_ERROR', 'external_id');
      expectError(await sys.http.post(`/v1/members/${m.id}/identities`, { provider: 'line', external_id: 'x', member_id: m.id }, { key: sys.adminKey }), 400, 'VALIDATION_ERROR', 'member_id');
      expect(await countRows(sys, 'member_external_identities', { member_id: m.id })).to.equal(0);
    });

    it('refuses member tokens (even for themselves) and merchant keys with 403', async () => {
      const { member, token } = await memberWithToken(sys);
      expectError(await sys.http.post(`/v1/members/${member.id}/identities`, { provider: 'line', external_id: 'x' }, { key: token }), 403, 'FORBIDDEN');
      expectError(await sys.http.post(`/v1/members/${member.id}/identities`, { provider: 'line', external_id: 'x' }, { key: merchantKey }), 403, 'FORBIDDEN');
      expect(await countRows(sys, 'member_external_identities', { member_id: member.id })).to.equal(0);
    });

    let target = '';
    before(async () => {
      target = (await createMember(sys)).id;
    });
    itRefusesMalformedRequests({
      sys: () => sys,
      method: 'POST',
      path: () => `/v1/members/${target}/identities`,
      key: () => sys.adminKey,
      state: () => countRows(sys, 'member_external_identities', { member_id: target }),
    });
  });

  describe('POST /v1/members/:id/tokens', () => {
    it('issues a member token that expires after MEMBER_TOKEN_TTL_S and reads only its member', async () => {
      const m = await createMember(sys);
      const started = Date.now();
      const res = await sys.http.post(`/v1/members/${m.id}/tokens`, {}, { key: appKey });
      expect(res.status).to.equal(201);
      expect(Object.keys(res.body).sort()).to.deep.equal(['expires_at', 'token']);
      expect(res.body.token).to.match(/^mps_mt_[A-Za-z0-9_-]{43}$/);
      const expected = started + sys.config.MEMBER_TOKEN_TTL_S * 1000;
      expect(Date.parse(res.body.expires_at)).to.be.closeTo(expected, 30_000);
      const row = await sys.deps.db('api_keys').where({ key_hash: sha256(res.body.token) }).first();
      expect(row).to.include({ role: 'member', member_id: m.id, status: 'active' });
      expect((await sys.http.get(`/v1/members/${m.id}`, { key: res.body.token })).status).to.equal(200);
      expect((await lastAudit(sys, 'member', m.id)).action).to.equal('member.token_issue');
      expect(JSON.stringify(await lastAudit(sys, 'member', m.id))).not.to.include(res.body.token);
    });

    it('refuses a suspended member with 422 MEMBER_SUSPENDED and issues nothing', async () => {
      const m = await createMember(sys);
      await sys.http.post(`/v1/members/${m.id}/suspend`, {}, { key: sys.adminKey });
      expectError(await sys.http.post(`/v1/members/${m.id}/tokens`, {}, { key: sys.adminKey }), 422, 'MEMBER_SUSPENDED');
      expect(await countRows(sys, 'api_keys', { member_id: m.id })).to.equal(0);
    });

    it('answers 404 for unknown members, 403 for member and merchant keys, 400 for any body field', async () => {
      const { member, token } = await memberWithToken(sys);
      const before = await countRows(sys, 'api_keys', { member_id: member.id });
      expectError(await sys.http.post(`/v1/members/${NO_SUCH_ID}/tokens`, {}, { key: sys.adminKey }), 404, 'NOT_FOUND');
      expectError(await sys.http.post(`/v1/members/${member.id}/tokens`, {}, { key: token }), 403, 'FORBIDDEN');
      expectError(await sys.http.post(`/v1/members/${member.id}/tokens`, {}, { key: merchantKey }), 403, 'FORBIDDEN');
      expectError(await sys.http.post(`/v1/members/${member.id}/tokens`, { ttl_seconds: 99999999 }, { key: sys.adminKey }), 400, 'VALIDATION_ERROR', 'ttl_seconds');
      expect(await countRows(sys, 'api_keys', { member_id: member.id })).to.equal(before);
    });

    let target = '';
    before(async () => {
      target = (await createMember(sys)).id;
    });
    itRefusesMalformedRequests({
      sys: () => sys,
      method: 'POST',
      path: () => `/v1/members/${target}/tokens`,
      key: () => sys.adminKey,
      state: () => countRows(sys, 'api_keys', { member_id: target }),
    });
  });

  describe('POST /v1/members/:id/suspend and /reactivate', () => {
    it('suspends and reactivates, with audit events; the member’s token is refused while suspended', async () => {
      const { member, token } = await memberWithToken(sys);
      const res = await sys.http.post(`/v1/members/${member.id}/suspend`, { reason: 'fraud review' }, { key: sys.adminKey });
      expect(res.status).to.equal(200);
      expect(res.body).to.include({ id: member.id, status: 'suspended' });
      expect((await memberRow(member.id)).status).to.equal('suspended');
      const audit = await lastAudit(sys, 'member', member.id);
      expect(audit).to.include({ action: 'member.suspend' });
      expect(audit.context).to.deep.equal({ reason: 'fraud review' });
      expectError(await sys.http.get(`/v1/members/${member.id}`, { key: token }), 403, 'MEMBER_SUSPENDED');
      expect((await sys.http.get(`/v1/members/${member.id}`, { key: sys.adminKey })).body.status).to.equal('suspended');

      const back = await sys.http.post(`/v1/members/${member.id}/reactivate`, {}, { key: sys.adminKey });
      expect(back.body.status).to.equal('active');
      expect((await memberRow(member.id)).status).to.equal('active');
      expect((await lastAudit(sys, 'member', member.id)).action).to.equal('member.reactivate');
      expect((await sys.http.get(`/v1/members/${member.id}`, { key: token })).status, 'the token works again').to.equal(200);
    });

    it('answers 409 to suspending a suspended member and reactivating an active one', async () => {
      const m = await createMember(sys);
      expectError(await sys.http.post(`/v1/members/${m.id}/reactivate`, {}, { key: sys.adminKey }), 409, 'CONFLICT');
      await sys.http.post(`/v1/members/${m.id}/suspend`, {}, { key: sys.adminKey });
      expectError(await sys.http.post(`/v1/members/${m.id}/suspend`, {}, { key: sys.adminKey }), 409, 'CONFLICT');
      expect(await countRows(sys, 'audit_events', { object_id: m.id, action: 'member.suspend' })).to.equal(1);
    });

    it('is for admins only, and changes nothing when refused', async () => {
      const { member, token } = await memberWithToken(sys);
      expectError(await sys.http.post(`/v1/members/${member.id}/suspend`, {}, { key: appKey }), 403, 'FORBIDDEN');
      expectError(await sys.http.post(`/v1/members/${member.id}/suspend`, {}, { key: token }), 403, 'FORBIDDEN');
      expectError(await sys.http.post(`/v1/members/${member.id}/suspend`, {}, { key: merchantKey }), 403, 'FORBIDDEN');
      expectError(await sys.http.post(`/v1/members/${NO_SUCH_ID}/suspend`, {}, { key: sys.adminKey }), 404, 'NOT_FOUND');
      expectError(await sys.http.post(`/v1/members/${member.id}/suspend`, { until: '2030-01-01' }, { key: sys.adminKey }), 400, 'VALIDATION_ERROR', 'until');
      expect((await memberRow(member.id)).status).to.equal('active');
    });

    let target = '';
    before(async () => {
      target = (await createMember(sys)).id;
    });
    itRefusesMalformedRequests({
      sys: () => sys,
      method: 'POST',
      path: () => `/v1/members/${target}/suspend`,
      key: () => sys.adminKey,
      state: async () => (await memberRow(target)).status,
    });
  });

  it('memberToken fixture issues a working token with an app key too', async () => {
    const m = await createMember(sys, { key: appKey });
    const token = await memberToken(sys, m.id, appKey);
    expect((await sys.http.get(`/v1/members/${m.id}`, { key: token })).body.id).to.equal(m.id);
  });
});
