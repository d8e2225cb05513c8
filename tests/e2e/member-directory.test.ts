import { randomBytes } from 'node:crypto';
import { expect } from 'chai';
import { canonicalJson } from '../../domain/audit-chain.js';
import { sha256 } from '../../domain/tokens.js';
import { bind, countRows, createAppKey, createMember, createMerchant, issueCard, lastAudit, memberToken, randomEmail, randomPhone, type MemberJson } from '../helpers/fixtures.js';
import type { HttpResult } from '../helpers/http.js';
import { expectError } from '../helpers/request-checks.js';
import { startSystem, type TestSystem } from '../helpers/system.js';

const externalId = () => `U${randomBytes(8).toString('hex')}`;
const NO_SUCH_ID = '00000000-0000-4000-8000-000000000000';

describe('e2e: member directory (GET /v1/members, PATCH /v1/members/:id, MEMBER_EXISTS)', function () {
  this.timeout(60_000);
  let sys: TestSystem;
  let appKey: string;
  let merchantKey: string;

  before(async () => {
    sys = await startSystem({}, { workers: false });
    appKey = await createAppKey(sys);
    merchantKey = (await createMerchant(sys)).key;
  });
  after(async () => {
    await sys?.stop();
  });

  const admin = () => ({ key: sys.adminKey });
  const lookup = (query: Record<string, string>, key = appKey) => sys.http.get(`/v1/members?${new URLSearchParams(query).toString()}`, { key });
  const ids = (res: HttpResult) => res.body.data.map((m: { id: string }) => m.id);

  describe('lookup', () => {
    let member: MemberJson;
    let phone: string;
    let email: string;
    let ext: string;
    before(async () => {
      [phone, email, ext] = [randomPhone(), randomEmail('Lookup.Me'), externalId()];
      member = await createMember(sys, { key: appKey, name: '林查找', phone, email, identity: { provider: 'line', external_id: ext } });
      // Another member with a card bound to the first one's (shown with its role).
      const shared = await issueCard(sys, { type: 'prepaid', ownerMemberId: member.id });
      await createMember(sys, { key: appKey, phone: randomPhone(), email: randomEmail() });
      member = (await sys.http.get(`/v1/members/${member.id}`, admin())).body;
      expect(member.cards.map((c) => c.id)).to.include(shared.id);
    });

    it('finds the member by phone, email, or provider and external_id: the member object with its cards and identities', async () => {
      for (const query of [{ phone }, { email }, { provider: 'line', external_id: ext }, { phone, email }] as Record<string, string>[]) {
        for (const key of [appKey, sys.adminKey]) {
          const res = await lookup(query, key);
          expect(res.status, res.text).to.equal(200);
          expect(res.body.next_cursor).to.equal(null);
          expect(res.body.data, JSON.stringify(query)).to.deep.equal([member]);
        }
      }
    });

    it('compares phones without spaces and dashes, and emails in any case', async () => {
      const spaced = `${phone.slice(0, 4)}-${phone.slice(4, 7)} ${phone.slice(7)}`;
      expect(ids(await lookup({ phone: spaced }))).to.deep.equal([member.id]);
      expect(ids(await lookup({ email: email.toUpperCase() }))).to.deep.equal([member.id]);
    });

    it('finds nothing for a phone, email or identity no member has, or a mix that matches two different members', async () => {
      for (const query of [{ phone: randomPhone() }, { email: randomEmail() }, { provider: 'line', external_id: externalId() }, { provider: 'wechat', external_id: ext }] as Record<string, string>[]) {
        const res = await lookup(query);
        expect(res.status, res.text).to.equal(200);
        expect(res.body).to.deep.equal({ data: [], next_cursor: null });
      }
      const other = await createMember(sys, { key: appKey, phone: randomPhone() });
      expect((await lookup({ phone: other.phone!, email })).body.data).to.deep.equal([]);
    });

    it('is for admin and app keys: merchants and member tokens get 403, no key 401', async () => {
      expectError(await lookup({ phone }, merchantKey), 403, 'FORBIDDEN');
      expectError(await lookup({ phone }, await memberToken(sys, member.id)), 403, 'FORBIDDEN');
      expectError(await sys.http.get(`/v1/members?phone=${phone}`), 401, 'UNAUTHENTICATED');
    });

    it('an app key must say whom it looks for: no listing, no name search, no status filter', async () => {
      expectError(await lookup({}), 400, 'VALIDATION_ERROR');
      expectError(await lookup({ limit: '10' }), 400, 'VALIDATION_ERROR');
      expectError(await lookup({ q: '林' }), 403, 'FORBIDDEN');
      expectError(await lookup({ phone, q: '林' }), 403, 'FORBIDDEN');
      expectError(await lookup({ status: 'active' }), 403, 'FORBIDDEN');
    });

    it('refuses bad query values with 400 VALIDATION_ERROR', async () => {
      const bad: Record<string, string>[] = [
        { provider: 'line' },
        { external_id: ext },
        { phone: 'call me' },
        { email: 'not-an-email' },
        { phone, limit: '0' },
        { phone, limit: '201' },
        { phone, cursor: 'not-a-cursor' },
        // A well-formed cursor whose id is not a member id: 400, not a failed cast.
        { phone, cursor: Buffer.from(JSON.stringify({ t: new Date().toISOString(), id: "x'; --" })).toString('base64url') },
        { phone, balance: '1' },
        { q: '' },
        { status: 'gone' },
      ];
      for (const query of bad) expectError(await lookup(query, sys.adminKey), 400, 'VALIDATION_ERROR');
    });
  });

  describe('admin search by name prefix and list', () => {
    const prefix = `Zq${randomBytes(3).toString('hex')}`;
    let made: MemberJson[];
    before(async () => {
      made = [];
      for (const suffix of ['a', 'b', 'c']) made.push(await createMember(sys, { name: `${prefix} ${suffix}` }));
      // Neither of these may match: another prefix, and LIKE's wildcards taken literally.
      await createMember(sys, { name: `x${prefix}` });
      await createMember(sys, { name: `${prefix.slice(0, 3)}_${prefix.slice(4)}` });
    });

    it('q is a case-insensitive name prefix; pages of one, newest first, each member once', async () => {
      const seen: string[] = [];
      let cursor: string | null = null;
      do {
        const res: HttpResult = await sys.http.get(`/v1/members?q=${prefix.toUpperCase()}&limit=1${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`, admin());
        expect(res.status, res.text).to.equal(200);
        seen.push(...ids(res));
        cursor = res.body.next_cursor;
      } while (cursor && seen.length < 10);
      expect(seen).to.deep.equal(made.map((m) => m.id).reverse());
    });

    it('treats % and _ in q as characters, not wildcards', async () => {
      expect(ids(await sys.http.get(`/v1/members?q=${encodeURIComponent(`${prefix.slice(0, 3)}_`)}`, admin()))).to.have.length(1);
      expect(ids(await sys.http.get(`/v1/members?q=${encodeURIComponent('%')}`, admin()))).to.deep.equal([]);
    });

    it('without a filter lists every member newest first; status narrows it', async () => {
      const res = await sys.http.get('/v1/members?limit=3', admin());
      expect(res.status, res.text).to.equal(200);
      expect(res.body.data).to.have.length(3);
      expect(res.body.next_cursor).to.be.a('string');
      const newest = await sys.deps.db('member_profiles').orderBy([{ column: 'created_at', order: 'desc' }, { column: 'id', order: 'desc' }]).limit(3).pluck('id');
      expect(ids(res)).to.deep.equal(newest);
      const suspended = await createMember(sys);
      expect((await sys.http.post(`/v1/members/${suspended.id}/suspend`, {}, admin())).status).to.equal(200);
      const listed = await sys.http.get('/v1/members?status=suspended&limit=200', admin());
      expect(listed.body.data.every((m: { status: string }) => m.status === 'suspended')).to.equal(true);
      expect(ids(listed)).to.include(suspended.id);
    });
  });

  describe('phone and email are unique among members (POST /v1/members)', () => {
    it('a second member with a phone in use, however written, or an email in another case, is 409 MEMBER_EXISTS and nothing is made', async () => {
      const [phone, email] = [randomPhone(), randomEmail()];
      await createMember(sys, { key: appKey, phone, email });
      const before = [await countRows(sys, 'member_profiles'), await countRows(sys, 'member_cards')];
      const samePhone = await sys.http.post('/v1/members', { name: 'Copy', phone: `${phone.slice(0, 4)} ${phone.slice(4)}` }, { key: appKey });
      expectError(samePhone, 409, 'MEMBER_EXISTS');
      expect(samePhone.body.error.details).to.deep.equal({ field: 'phone' });
      const sameEmail = await sys.http.post('/v1/members', { name: 'Copy', email: email.toUpperCase() }, admin());
      expectError(sameEmail, 409, 'MEMBER_EXISTS');
      expect(sameEmail.body.error.details).to.deep.equal({ field: 'email' });
      expect([await countRows(sys, 'member_profiles'), await countRows(sys, 'member_cards')]).to.deep.equal(before);
    });

    it('two sign-ups racing for one phone: one member, one 409', async () => {
      const phone = randomPhone();
      const results = await Promise.all([1, 2, 3].map((i) => sys.http.post('/v1/members', { name: `Racer ${i}`, phone }, { key: appKey })));
      expect(results.map((r) => r.status).sort()).to.deep.equal([201, 409, 409]);
      expect(await countRows(sys, 'member_profiles', { phone })).to.equal(1);
    });
  });

  describe('PATCH /v1/members/:id', () => {
    it('corrects name, phone and email; the audit event names the fields and points at the erasable before/after, without the values', async () => {
      const before = { phone: randomPhone(), email: randomEmail() };
      const member = await createMember(sys, { key: appKey, name: '陳舊名', ...before });
      const after = { name: '陳新名', phone: randomPhone(), email: randomEmail() };
      const res = await sys.http.patch(`/v1/members/${member.id}`, after, { key: appKey });
      expect(res.status, res.text).to.equal(200);
      expect(res.body).to.deep.equal({ ...member, ...after });
      expect((await sys.http.get(`/v1/members/${member.id}`, admin())).body).to.deep.equal(res.body);
      expect(ids(await lookup({ phone: after.phone }))).to.deep.equal([member.id]);
      expect(ids(await lookup({ phone: before.phone }))).to.deep.equal([]);

      const audit = await lastAudit(sys, 'member', member.id);
      expect(audit).to.include({ action: 'member.update', role: 'app' });
      expect(audit.context.changed).to.deep.equal(['name', 'phone', 'email']);
      for (const value of [member.name, after.name, before.phone, after.phone, before.email, after.email]) expect(JSON.stringify(audit)).to.not.contain(value);
      const change = await sys.deps.db('member_profile_changes').where({ id: audit.context.change_id }).first();
      expect(change).to.include({ member_id: member.id });
      expect(change.before).to.deep.equal({ name: member.name, ...before });
      expect(change.after).to.deep.equal(after);
      // The event commits to the values: a row edited afterwards no longer matches it.
      expect(audit.context.digest).to.equal(sha256(`${change.salt}.${canonicalJson({ before: change.before, after: change.after })}`));
      const verify = await sys.http.get('/v1/audit/verify', admin());
      expect(verify.body.ok, verify.text).to.equal(true);
      // The member's data export carries the corrections.
      const exported = await sys.http.get(`/v1/members/${member.id}/export`, admin());
      expect(exported.body.profile_changes.map((c: { id: string }) => c.id)).to.deep.equal([change.id]);
    });

    it('a member corrects itself; another member is 404 as if absent; merchants 403', async () => {
      const me = await createMember(sys);
      const other = await createMember(sys);
      const token = await memberToken(sys, me.id);
      const phone = randomPhone();
      const res = await sys.http.patch(`/v1/members/${me.id}`, { phone }, { key: token });
      expect(res.status, res.text).to.equal(200);
      expect(res.body).to.include({ id: me.id, phone });
      expect((await lastAudit(sys, 'member', me.id)).role).to.equal('member');
      expectError(await sys.http.patch(`/v1/members/${other.id}`, { name: 'Hijack' }, { key: token }), 404, 'NOT_FOUND');
      expectError(await sys.http.patch(`/v1/members/${NO_SUCH_ID}`, { name: 'Nobody' }, { key: token }), 404, 'NOT_FOUND');
      expectError(await sys.http.patch(`/v1/members/${other.id}`, { name: 'Shop' }, { key: merchantKey }), 403, 'FORBIDDEN');
      expect((await sys.http.get(`/v1/members/${other.id}`, admin())).body.name).to.equal(other.name);
      expectError(await sys.http.patch(`/v1/members/${NO_SUCH_ID}`, { name: 'Nobody' }, admin()), 404, 'NOT_FOUND');
      expectError(await sys.http.patch('/v1/members/not-a-uuid', { name: 'Nobody' }, admin()), 404, 'NOT_FOUND');
    });

    it('a phone or email another member has is 409 MEMBER_EXISTS and changes nothing; its own, written another way, is fine', async () => {
      const holder = await createMember(sys, { phone: randomPhone(), email: randomEmail() });
      const member = await createMember(sys, { phone: randomPhone() });
      for (const [body, field] of [[{ phone: holder.phone }, 'phone'], [{ name: 'Changed', email: holder.email!.toUpperCase() }, 'email']] as const) {
        const res = await sys.http.patch(`/v1/members/${member.id}`, body, admin());
        expectError(res, 409, 'MEMBER_EXISTS');
        expect(res.body.error.details).to.deep.equal({ field });
      }
      expect((await sys.http.get(`/v1/members/${member.id}`, admin())).body).to.deep.equal(member);
      expect(await countRows(sys, 'member_profile_changes', { member_id: member.id })).to.equal(0);
      const reformatted = `${member.phone!.slice(0, 4)}-${member.phone!.slice(4)}`;
      const res = await sys.http.patch(`/v1/members/${member.id}`, { phone: reformatted }, admin());
      expect(res.status, res.text).to.equal(200);
      expect(res.body.phone).to.equal(reformatted);
    });

    it('null removes a phone or email, which another member may then take', async () => {
      const [phone, email] = [randomPhone(), randomEmail()];
      const first = await createMember(sys, { phone, email });
      const res = await sys.http.patch(`/v1/members/${first.id}`, { phone: null, email: null }, admin());
      expect(res.status, res.text).to.equal(200);
      expect(res.body).to.include({ phone: null, email: null });
      const second = await createMember(sys, { phone, email });
      expect(ids(await lookup({ phone }))).to.deep.equal([second.id]);
    });

    it('the same values again change nothing and write no event', async () => {
      const member = await createMember(sys, { phone: randomPhone() });
      const events = await countRows(sys, 'audit_events', { object_id: member.id });
      const res = await sys.http.patch(`/v1/members/${member.id}`, { name: member.name, phone: member.phone }, admin());
      expect(res.status, res.text).to.equal(200);
      expect(res.body).to.deep.equal(member);
      expect(await countRows(sys, 'audit_events', { object_id: member.id })).to.equal(events);
    });

    it('refuses bad bodies with 400 and changes nothing', async () => {
      const member = await createMember(sys, { phone: randomPhone() });
      for (const body of [{}, { name: null }, { name: '' }, { name: 'x'.repeat(101) }, { phone: 'call me' }, { email: 'nope' }, { status: 'erased' }, { name: 'A', member_no: 'M1' }]) {
        expectError(await sys.http.patch(`/v1/members/${member.id}`, body, admin()), 400, 'VALIDATION_ERROR');
      }
      expect((await sys.http.get(`/v1/members/${member.id}`, admin())).body).to.deep.equal(member);
    });
  });

  describe('erasure', () => {
    it('an erased member is found by nothing it was; its phone, email and identity are free again; its old values are gone from the database', async () => {
      const first = { phone: randomPhone(), email: randomEmail() };
      const ext = externalId();
      const member = await createMember(sys, { key: appKey, name: `Erasable ${randomBytes(3).toString('hex')}`, ...first, identity: { provider: 'line', external_id: ext } });
      const later = { name: `Renamed ${randomBytes(3).toString('hex')}`, phone: randomPhone(), email: randomEmail() };
      expect((await sys.http.patch(`/v1/members/${member.id}`, later, { key: appKey })).status).to.equal(200);
      const owner = await createMember(sys);
      const shared = await issueCard(sys, { type: 'prepaid', ownerMemberId: owner.id });
      await bind(sys, { key: appKey, cardNo: shared.card_no, memberId: member.id });

      expect((await sys.http.post(`/v1/members/${member.id}/erase`, {}, admin())).status).to.equal(200);

      for (const query of [{ phone: later.phone }, { email: later.email }, { phone: first.phone }, { provider: 'line', external_id: ext }] as Record<string, string>[]) {
        expect((await lookup(query)).body.data, JSON.stringify(query)).to.deep.equal([]);
      }
      for (const q of [later.name, 'erased']) {
        const found = await sys.http.get(`/v1/members?q=${encodeURIComponent(q)}&limit=200`, admin());
        expect(ids(found)).to.not.include(member.id);
      }
      const reused = await createMember(sys, { key: appKey, ...later, identity: { provider: 'line', external_id: ext } });
      expect(ids(await lookup({ phone: later.phone }))).to.deep.equal([reused.id]);
      expectError(await sys.http.patch(`/v1/members/${member.id}`, { name: 'Back' }, admin()), 422, 'UNPROCESSABLE');

      const needles = [first.phone, first.email, later.phone, later.email, member.name, later.name];
      const { rows } = await sys.deps.db.raw<{ rows: { n: number }[] }>(
        `SELECT (SELECT count(*) FROM member_profiles WHERE id = :id AND row_to_json(member_profiles)::text LIKE ANY (:likes))
              + (SELECT count(*) FROM member_profile_changes WHERE member_id = :id)
              + (SELECT count(*) FROM audit_events WHERE row_to_json(audit_events)::text LIKE ANY (:likes)) AS n`,
        { id: member.id, likes: needles.map((n) => `%${n}%`) },
      );
      expect(Number(rows[0]!.n)).to.equal(0);
      // The binding stays (the card and its records are kept), by member id only.
      const card = await sys.http.get(`/v1/cards/${shared.id}`, admin());
      expect(card.body.bindings.map((b: { member_id: string }) => b.member_id)).to.include(member.id);
    });
  });
});
