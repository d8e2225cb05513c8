import { expect } from 'chai';
import bcrypt from 'bcryptjs';
import {
  bind,
  countRows,
  createAppKey,
  createMember,
  createMerchant,
  DEFAULT_BINDING_PASSWORD,
  issueCard,
  lastAudit,
  memberWithToken,
  type CardJson,
} from '../helpers/fixtures.js';
import { expectError, itRefusesMalformedRequests } from '../helpers/request-checks.js';
import { startSystem, type TestSystem } from '../helpers/system.js';
import { issueQr } from '../helpers/money.js';

const NO_SUCH_ID = '00000000-0000-4000-8000-000000000000';
const inOneYear = () => new Date(Date.now() + 365 * 86_400_000).toISOString();

describe('cards API', () => {
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

  const cardRow = (id: string) => sys.deps.db('member_cards').where({ id }).first();
  const bindingRow = (cardId: string, memberId: string) => sys.deps.db('card_bindings').where({ card_id: cardId, member_id: memberId }).first();

  describe('POST /v1/cards', () => {
    it('issues a prepaid card with a bcrypt-hashed binding password and an owner binding', async () => {
      const owner = await createMember(sys);
      const expires = inOneYear();
      const res = await sys.http.post('/v1/cards', { type: 'prepaid', owner_member_id: owner.id, binding_password: 'Open-sesame-1', expires_at: expires }, { key: sys.adminKey });
      expect(res.status).to.equal(201);
      expect(res.body).to.include({ type: 'prepaid', status: 'active', owner_member_id: owner.id, balance: '0.00', points: 0, level: 0, discount_rate: '1.000', fixed_discount: null, face_value: null });
      expect(res.body.card_no).to.match(/^8802\d{12}$/);
      expect(res.body.expires_at).to.equal(new Date(expires).toISOString());
      const row = await cardRow(res.body.id);
      expect(row.binding_password_hash).to.match(/^\$2[aby]\$10\$/);
      expect(await bcrypt.compare('Open-sesame-1', row.binding_password_hash)).to.equal(true);
      expect(await bindingRow(res.body.id, owner.id)).to.include({ role: 'owner' });
      const audit = await lastAudit(sys, 'card', res.body.id);
      expect(audit).to.include({ action: 'card.create' });
      expect(JSON.stringify(audit)).not.to.include('Open-sesame-1');
    });

    it('issues corporate cards with fixed_discount "1.000" by default or the given rate, which is also their discount_rate', async () => {
      const owner = await createMember(sys);
      const plain = await issueCard(sys, { type: 'corporate', ownerMemberId: owner.id });
      expect(plain).to.include({ fixed_discount: '1.000', discount_rate: '1.000' });
      expect(plain.card_no).to.match(/^8803/);
      const discounted = await issueCard(sys, { type: 'corporate', ownerMemberId: owner.id, fixedDiscount: 0.9, key: appKey });
      expect(discounted).to.include({ fixed_discount: '0.900', discount_rate: '0.900' });
      expect((await cardRow(discounted.id)).fixed_discount).to.equal('0.900');
    });

    it('issues a voucher whose balance is its face value, written as a recharge with a ledger row', async () => {
      const owner = await createMember(sys);
      const voucher = await issueCard(sys, { type: 'voucher', ownerMemberId: owner.id, faceValue: '500.5' });
      expect(voucher).to.include({ type: 'voucher', balance: '500.50', face_value: '500.50', discount_rate: '1.000' });
      expect(voucher.card_no).to.match(/^8804/);
      const row = await cardRow(voucher.id);
      expect(row).to.include({ balance_minor: 50050, face_value_minor: 50050, binding_password_hash: null });
      const txs = await sys.deps.db('transactions').where({ card_id: voucher.id });
      expect(txs).to.have.length(1);
      expect(txs[0]).to.include({ type: 'recharge', payment_method: 'voucher_issue', operation_id: null, merchant_id: null, member_id: owner.id, raw_amount_minor: 50050, final_amount_minor: 50050, via_balance: true });
      expect(txs[0].tx_no).to.match(/^RCH\d{8}\d{13}$/);
      const ledger = await sys.deps.db('balance_ledger').where({ card_id: voucher.id });
      expect(ledger).to.have.length(1);
      expect(ledger[0]).to.include({ transaction_id: txs[0].id, delta_minor: 50050, balance_after_minor: 50050, reason: 'recharge' });
    });

    const invalid: [string, Record<string, unknown>, string][] = [
      ['a missing type', { binding_password: 'Secret-123' }, 'type'],
      ['type standard (made with the member)', { type: 'standard' }, 'type'],
      ['an unknown type', { type: 'gift', binding_password: 'Secret-123' }, 'type'],
      ['a missing owner_member_id', { type: 'prepaid', binding_password: 'Secret-123', owner_member_id: undefined }, 'owner_member_id.*required'],
      ['an owner_member_id that is not a UUID', { type: 'prepaid', binding_password: 'Secret-123', owner_member_id: 'me' }, 'owner_member_id'],
      ['fixed_discount on a prepaid card', { type: 'prepaid', binding_password: 'Secret-123', fixed_discount: '0.9' }, 'fixed_discount'],
      ['a fixed_discount with 4 decimals', { type: 'corporate', binding_password: 'Secret-123', fixed_discount: '0.9001' }, 'fixed_discount'],
      ['a fixed_discount over 1', { type: 'corporate', binding_password: 'Secret-123', fixed_discount: 1.2 }, 'fixed_discount'],
      ['a voucher without face_value', { type: 'voucher' }, 'face_value'],
      ['face_value on a prepaid card', { type: 'prepaid', binding_password: 'Secret-123', face_value: 100 }, 'face_value'],
      ['a face_value that is a boolean', { type: 'voucher', face_value: true }, 'face_value'],
      ['a binding_password on a voucher', { type: 'voucher', face_value: 100, binding_password: 'Secret-123' }, 'binding_password'],
      ['a prepaid card without binding_password', { type: 'prepaid' }, 'binding_password'],
      ['a binding_password of 5 characters', { type: 'prepaid', binding_password: '12345' }, 'binding_password'],
      ['a binding_password of 73 bytes', { type: 'corporate', binding_password: 'p'.repeat(73) }, 'binding_password'],
      ['a binding_password that is a number', { type: 'prepaid', binding_password: 12345678 }, 'binding_password'],
      ['an expires_at in the past', { type: 'prepaid', binding_password: 'Secret-123', expires_at: '2020-01-01T00:00:00Z' }, 'expires_at'],
      ['an expires_at that is not ISO 8601', { type: 'prepaid', binding_password: 'Secret-123', expires_at: 'next year' }, 'expires_at'],
      ['the server-owned balance', { type: 'prepaid', binding_password: 'Secret-123', balance: '1000.00' }, 'balance'],
      ['the server-owned status', { type: 'prepaid', binding_password: 'Secret-123', status: 'active' }, 'status'],
      ['the server-owned points', { type: 'prepaid', binding_password: 'Secret-123', points: 99999 }, 'points'],
      ['a card_no', { type: 'prepaid', binding_password: 'Secret-123', card_no: '8802000000000001' }, 'card_no'],
    ];
    for (const [what, body, field] of invalid) {
      it(`refuses ${what} with 400 VALIDATION_ERROR naming ${field.split('.')[0]}, issuing nothing`, async () => {
        const owner = await createMember(sys);
        const res = await sys.http.post('/v1/cards', { owner_member_id: owner.id, ...body }, { key: sys.adminKey });
        expectError(res, 400, 'VALIDATION_ERROR', new RegExp(field));
        expect(await countRows(sys, 'member_cards', { owner_member_id: owner.id })).to.equal(1);
      });
    }

    for (const [what, faceValue] of [
      ['three decimals', '10.001'],
      ['zero', 0],
      ['a negative amount', '-5'],
      ['an exponent', '1e3'],
      ['more than MAX_AMOUNT', '1000000.01'],
    ] as const) {
      it(`refuses a face_value of ${what} with 400 AMOUNT_INVALID, writing no card, transaction or ledger`, async () => {
        const owner = await createMember(sys);
        const before = [await countRows(sys, 'transactions'), await countRows(sys, 'balance_ledger')];
        expectError(await sys.http.post('/v1/cards', { type: 'voucher', owner_member_id: owner.id, face_value: faceValue }, { key: sys.adminKey }), 400, 'AMOUNT_INVALID', 'face_value');
        expect(await countRows(sys, 'member_cards', { owner_member_id: owner.id })).to.equal(1);
        expect([await countRows(sys, 'transactions'), await countRows(sys, 'balance_ledger')]).to.deep.equal(before);
      });
    }

    it('answers 404 for an unknown owner and 422 MEMBER_SUSPENDED for a suspended one', async () => {
      const before = await countRows(sys, 'member_cards');
      expectError(await sys.http.post('/v1/cards', { type: 'prepaid', owner_member_id: NO_SUCH_ID, binding_password: 'Secret-123' }, { key: sys.adminKey }), 404, 'NOT_FOUND');
      const owner = await createMember(sys);
      await sys.http.post(`/v1/members/${owner.id}/suspend`, {}, { key: sys.adminKey });
      expectError(await sys.http.post('/v1/cards', { type: 'prepaid', owner_member_id: owner.id, binding_password: 'Secret-123' }, { key: sys.adminKey }), 422, 'MEMBER_SUSPENDED');
      expect(await countRows(sys, 'member_cards')).to.equal(before + 1); // only the suspended member's standard card
    });

    it('refuses merchant keys and member tokens (even for themselves) with 403', async () => {
      const { member, token } = await memberWithToken(sys);
      for (const key of [merchantKey, token]) {
        expectError(await sys.http.post('/v1/cards', { type: 'prepaid', owner_member_id: member.id, binding_password: 'Secret-123' }, { key }), 403, 'FORBIDDEN');
      }
      expect(await countRows(sys, 'member_cards', { owner_member_id: member.id })).to.equal(1);
    });

    itRefusesMalformedRequests({ sys: () => sys, method: 'POST', path: () => '/v1/cards', key: () => sys.adminKey, state: () => countRows(sys, 'member_cards') });
  });

  describe('GET /v1/cards/:id', () => {
    let owner: Awaited<ReturnType<typeof memberWithToken>>;
    let viewer: Awaited<ReturnType<typeof memberWithToken>>;
    let card: CardJson;
    before(async () => {
      owner = await memberWithToken(sys);
      viewer = await memberWithToken(sys);
      card = await issueCard(sys, { type: 'prepaid', ownerMemberId: owner.member.id });
      await bind(sys, { key: viewer.token, cardNo: card.card_no, role: 'viewer' });
    });

    it('shows admins and apps the card with its bindings', async () => {
      for (const key of [sys.adminKey, appKey]) {
        const res = await sys.http.get(`/v1/cards/${card.id}`, { key });
        expect(res.status).to.equal(200);
        expect(res.body).to.include({ id: card.id, card_no: card.card_no, balance: '0.00', points: 0, level: 0, discount_rate: '1.000', status: 'active' });
        expect(res.body.bindings.map((b: { member_id: string; role: string }) => [b.member_id, b.role])).to.have.deep.members([
          [owner.member.id, 'owner'],
          [viewer.member.id, 'viewer'],
        ]);
      }
    });

    it('shows the owner the bindings, and a bound viewer the card without them', async () => {
      const mine = await sys.http.get(`/v1/cards/${card.id}`, { key: owner.token });
      expect(mine.status).to.equal(200);
      expect(mine.body.role).to.equal('owner');
      expect(mine.body.bindings).to.have.length(2);
      const bound = await sys.http.get(`/v1/cards/${card.id}`, { key: viewer.token });
      expect(bound.status).to.equal(200);
      expect(bound.body).to.include({ id: card.id, role: 'viewer' });
      expect(bound.body).not.to.have.property('bindings');
    });

    it("answers 404 to a member who is not bound, as for unknown and malformed ids; 403 to merchants", async () => {
      const stranger = await memberWithToken(sys);
      expectError(await sys.http.get(`/v1/cards/${card.id}`, { key: stranger.token }), 404, 'NOT_FOUND');
      expectError(await sys.http.get(`/v1/cards/${NO_SUCH_ID}`, { key: sys.adminKey }), 404, 'NOT_FOUND');
      expectError(await sys.http.get('/v1/cards/8802000000000001', { key: sys.adminKey }), 404, 'NOT_FOUND');
      expectError(await sys.http.get(`/v1/cards/${card.id}`, { key: merchantKey }), 403, 'FORBIDDEN');
      expectError(await sys.http.get(`/v1/cards/${card.id}`), 401, 'UNAUTHENTICATED');
    });

    it("shows the discount of the card's level once points reach it", async () => {
      const c = await issueCard(sys, { type: 'prepaid', ownerMemberId: owner.member.id });
      await sys.http.post(`/v1/cards/${c.id}/points-adjustments`, { delta: 5000, reason: 'welcome gift' }, { key: sys.adminKey });
      const res = await sys.http.get(`/v1/cards/${c.id}`, { key: owner.token });
      expect(res.body).to.include({ points: 5000, level: 2, discount_rate: '0.900' });
    });
  });

  describe('POST /v1/cards/:id/freeze and /unfreeze', () => {
    it('freezes an active card and unfreezes it, with audit events', async () => {
      const owner = await createMember(sys);
      const card = await issueCard(sys, { type: 'prepaid', ownerMemberId: owner.id });
      const res = await sys.http.post(`/v1/cards/${card.id}/freeze`, { reason: 'reported lost' }, { key: sys.adminKey });
      expect(res.status).to.equal(200);
      expect(res.body).to.include({ id: card.id, status: 'frozen' });
      expect((await cardRow(card.id)).status).to.equal('frozen');
      const audit = await lastAudit(sys, 'card', card.id);
      expect(audit).to.include({ action: 'card.freeze' });
      expect(audit.context).to.deep.equal({ reason: 'reported lost' });

      const back = await sys.http.post(`/v1/cards/${card.id}/unfreeze`, {}, { key: sys.adminKey });
      expect(back.body.status).to.equal('active');
      expect((await cardRow(card.id)).status).to.equal('active');
      expect((await lastAudit(sys, 'card', card.id)).action).to.equal('card.unfreeze');
    });

    it('answers 409 CONFLICT to freezing a frozen card, unfreezing an active one, and freezing a used voucher', async () => {
      const owner = await createMember(sys);
      const card = owner.cards[0]!;
      expectError(await sys.http.post(`/v1/cards/${card.id}/unfreeze`, {}, { key: sys.adminKey }), 409, 'CONFLICT', 'active');
      await sys.http.post(`/v1/cards/${card.id}/freeze`, {}, { key: sys.adminKey });
      expectError(await sys.http.post(`/v1/cards/${card.id}/freeze`, {}, { key: sys.adminKey }), 409, 'CONFLICT', 'frozen');
      expect(await countRows(sys, 'audit_events', { object_id: card.id, action: 'card.freeze' })).to.equal(1);
      const voucher = await issueCard(sys, { type: 'voucher', ownerMemberId: owner.id, faceValue: 10 });
      await sys.deps.db('member_cards').where({ id: voucher.id }).update({ status: 'used' });
      expectError(await sys.http.post(`/v1/cards/${voucher.id}/freeze`, {}, { key: sys.adminKey }), 409, 'CONFLICT', 'used');
      expect((await cardRow(voucher.id)).status).to.equal('used');
    });

    it('is for admins only; 404 for unknown cards; 400 for unknown fields; nothing changes', async () => {
      const { token, standardCard } = await memberWithToken(sys);
      for (const key of [appKey, token, merchantKey]) expectError(await sys.http.post(`/v1/cards/${standardCard.id}/freeze`, {}, { key }), 403, 'FORBIDDEN');
      expectError(await sys.http.post(`/v1/cards/${NO_SUCH_ID}/freeze`, {}, { key: sys.adminKey }), 404, 'NOT_FOUND');
      expectError(await sys.http.post(`/v1/cards/${standardCard.id}/freeze`, { status: 'frozen' }, { key: sys.adminKey }), 400, 'VALIDATION_ERROR', 'status');
      expect((await cardRow(standardCard.id)).status).to.equal('active');
    });

    let target = '';
    before(async () => {
      target = (await createMember(sys)).cards[0]!.id;
    });
    itRefusesMalformedRequests({ sys: () => sys, method: 'POST', path: () => `/v1/cards/${target}/freeze`, key: () => sys.adminKey, state: async () => (await cardRow(target)).status });
  });

  describe('POST /v1/cards/bind', () => {
    it('binds a member token to a shared card as member by default, with an audit event', async () => {
      const owner = await createMember(sys);
      const card = await issueCard(sys, { type: 'prepaid', ownerMemberId: owner.id });
      const { member, token } = await memberWithToken(sys);
      const res = await sys.http.post('/v1/cards/bind', { card_no: card.card_no, binding_password: DEFAULT_BINDING_PASSWORD }, { key: token });
      expect(res.status).to.equal(201);
      expect(res.body).to.include({ card_id: card.id, member_id: member.id, role: 'member' });
      expect(Date.parse(res.body.created_at)).to.be.closeTo(Date.now(), 60_000);
      expect(await bindingRow(card.id, member.id)).to.include({ role: 'member' });
      const audit = await lastAudit(sys, 'card', card.id);
      expect(audit).to.include({ action: 'card.bind', role: 'member' });
      expect(audit.context).to.deep.equal({ member_id: member.id, role: 'member' });
      expect(JSON.stringify(audit)).not.to.include(DEFAULT_BINDING_PASSWORD);
      expect((await sys.http.get(`/v1/cards/${card.id}`, { key: token })).status).to.equal(200);
    });

    it('binds for an app with member_id, to corporate cards too; an admin then sets the role', async () => {
      const owner = await createMember(sys);
      const card = await issueCard(sys, { type: 'corporate', ownerMemberId: owner.id, password: 'corp-pass-1' });
      const member = await createMember(sys);
      const binding = await bind(sys, { key: appKey, cardNo: card.card_no, password: 'corp-pass-1', memberId: member.id, role: 'admin' });
      expect(binding).to.include({ card_id: card.id, member_id: member.id, role: 'admin' });
    });

    it('a binding password grants member only: role in the bind body is 400, and the owner (or an admin) sets roles', async () => {
      const owner = await memberWithToken(sys);
      const card = await issueCard(sys, { type: 'prepaid', ownerMemberId: owner.member.id });
      const other = await memberWithToken(sys);
      const third = await memberWithToken(sys);
      expectError(await sys.http.post('/v1/cards/bind', { card_no: card.card_no, binding_password: DEFAULT_BINDING_PASSWORD, role: 'admin' }, { key: other.token }), 400, 'VALIDATION_ERROR');
      expect(await countRows(sys, 'card_bindings', { card_id: card.id })).to.equal(1);
      await bind(sys, { key: other.token, cardNo: card.card_no });
      await bind(sys, { key: third.token, cardNo: card.card_no });
      const path = (memberId: string) => `/v1/cards/${card.id}/bindings/${memberId}`;
      // A plain member may not promote anyone, itself included.
      expectError(await sys.http.patch(path(other.member.id), { role: 'admin' }, { key: other.token }), 403, 'FORBIDDEN');
      expectError(await sys.http.patch(path(third.member.id), { role: 'admin' }, { key: other.token }), 403, 'FORBIDDEN');
      expect((await bindingRow(card.id, other.member.id)).role).to.equal('member');
      const promoted = await sys.http.patch(path(other.member.id), { role: 'admin' }, { key: owner.token });
      expect(promoted.status, promoted.text).to.equal(200);
      expect(promoted.body).to.include({ member_id: other.member.id, role: 'admin' });
      expect(await lastAudit(sys, 'card', card.id)).to.deep.include({ action: 'card.binding_role', context: { member_id: other.member.id, before: 'member', after: 'admin', qr_revoked: 0 } });
      // Made a viewer, a member loses the QR it had: viewers cannot pay.
      await issueQr(sys, card.id, third.token);
      const viewer = await sys.http.patch(path(third.member.id), { role: 'viewer' }, { key: sys.adminKey });
      expect(viewer.body.role).to.equal('viewer');
      expect(await countRows(sys, 'card_qr_state', { card_id: card.id, member_id: third.member.id })).to.equal(0);
      expectError(await sys.http.patch(path(owner.member.id), { role: 'member' }, { key: sys.adminKey }), 409, 'CONFLICT');
      expectError(await sys.http.patch(path(other.member.id), { role: 'owner' }, { key: sys.adminKey }), 400, 'VALIDATION_ERROR');
      expectError(await sys.http.patch(path(other.member.id), { role: 'viewer' }, { key: appKey }), 403, 'FORBIDDEN');
    });

    it('the owner rotates the binding password: the old one stops binding, a weak one is 400', async () => {
      const owner = await memberWithToken(sys);
      const card = await issueCard(sys, { type: 'prepaid', ownerMemberId: owner.member.id });
      const other = await memberWithToken(sys);
      const rotate = (password: string, key: string) => sys.http.post(`/v1/cards/${card.id}/binding-password`, { password }, { key });
      expectError(await rotate('short1A', owner.token), 400, 'VALIDATION_ERROR');
      expectError(await rotate('alllowercase', owner.token), 400, 'VALIDATION_ERROR');
      await bind(sys, { key: other.token, cardNo: card.card_no });
      expectError(await rotate('New-Family-2026', other.token), 403, 'FORBIDDEN');
      expect((await rotate('New-Family-2026', owner.token)).status).to.equal(204);
      expect(JSON.stringify(await lastAudit(sys, 'card', card.id))).to.not.contain('New-Family-2026');
      const late = await memberWithToken(sys);
      expectError(await sys.http.post('/v1/cards/bind', { card_no: card.card_no, binding_password: DEFAULT_BINDING_PASSWORD }, { key: late.token }), 403, 'BINDING_PASSWORD_INVALID');
      await bind(sys, { key: late.token, cardNo: card.card_no, password: 'New-Family-2026' });
      expect((await sys.http.post(`/v1/cards/${card.id}/binding-password`, { password: 'Admin-Set-2026' }, { key: sys.adminKey })).status).to.equal(204);
    });

    it('gives one answer, 403 BINDING_PASSWORD_INVALID, for a wrong password, an unknown number and unshareable cards', async () => {
      const owner = await createMember(sys);
      const card = await issueCard(sys, { type: 'prepaid', ownerMemberId: owner.id });
      const voucher = await issueCard(sys, { type: 'voucher', ownerMemberId: owner.id, faceValue: 100 });
      const { member, token } = await memberWithToken(sys);
      const messages = new Set<string>();
      for (const [cardNo, password] of [
        [card.card_no, 'wrong-password'],
        ['8802999999999999', DEFAULT_BINDING_PASSWORD],
        [owner.cards[0]!.card_no, DEFAULT_BINDING_PASSWORD],
        [voucher.card_no, DEFAULT_BINDING_PASSWORD],
      ]) {
        const res = await sys.http.post('/v1/cards/bind', { card_no: cardNo, binding_password: password }, { key: token });
        expectError(res, 403, 'BINDING_PASSWORD_INVALID');
        messages.add(res.body.error.message);
      }
      expect(messages.size).to.equal(1);
      expect(await countRows(sys, 'card_bindings', { member_id: member.id })).to.equal(1); // its own standard card only
    });

    it('answers 409 CONFLICT when the member is already bound (the owner too), adding no row', async () => {
      const owner = await memberWithToken(sys);
      const card = await issueCard(sys, { type: 'prepaid', ownerMemberId: owner.member.id });
      const other = await memberWithToken(sys);
      await bind(sys, { key: other.token, cardNo: card.card_no });
      expectError(await sys.http.post('/v1/cards/bind', { card_no: card.card_no, binding_password: DEFAULT_BINDING_PASSWORD }, { key: other.token }), 409, 'CONFLICT');
      expectError(await sys.http.post('/v1/cards/bind', { card_no: card.card_no, binding_password: DEFAULT_BINDING_PASSWORD }, { key: owner.token }), 409, 'CONFLICT');
      expect(await countRows(sys, 'card_bindings', { card_id: card.id })).to.equal(2);
      expect((await bindingRow(card.id, other.member.id)).role).to.equal('member');
      expect((await bindingRow(card.id, owner.member.id)).role).to.equal('owner');
    });

    it('refuses a suspended member’s token with 403 MEMBER_SUSPENDED', async () => {
      const owner = await createMember(sys);
      const card = await issueCard(sys, { type: 'prepaid', ownerMemberId: owner.id });
      const { member, token } = await memberWithToken(sys);
      await sys.http.post(`/v1/members/${member.id}/suspend`, {}, { key: sys.adminKey });
      expectError(await sys.http.post('/v1/cards/bind', { card_no: card.card_no, binding_password: DEFAULT_BINDING_PASSWORD }, { key: token }), 403, 'MEMBER_SUSPENDED');
      expect(await bindingRow(card.id, member.id)).to.equal(undefined);
    });

    it('refuses bad bodies with 400 naming the field, binding nothing', async () => {
      const owner = await createMember(sys);
      const card = await issueCard(sys, { type: 'prepaid', ownerMemberId: owner.id });
      const { member, token } = await memberWithToken(sys);
      const good = { card_no: card.card_no, binding_password: DEFAULT_BINDING_PASSWORD };
      const cases: [string, Record<string, unknown>, string][] = [
        [token, { ...good, member_id: owner.id }, 'member_id'], // member tokens bind themselves
        [appKey, good, 'member_id'], // apps say for whom
        [token, { binding_password: DEFAULT_BINDING_PASSWORD }, 'card_no'],
        [token, { card_no: card.card_no }, 'binding_password'],
        [token, { ...good, card_no: '123' }, 'card_no'],
        [token, { ...good, card_no: 8802000000000001 }, 'card_no'],
        [token, { ...good, role: 'owner' }, 'role'],
        [token, { ...good, card_id: card.id }, 'card_id'],
        [appKey, { ...good, member_id: 'someone' }, 'member_id'],
      ];
      for (const [key, body, field] of cases) {
        expectError(await sys.http.post('/v1/cards/bind', body, { key }), 400, 'VALIDATION_ERROR', field);
      }
      expectError(await sys.http.post('/v1/cards/bind', { ...good, member_id: NO_SUCH_ID }, { key: appKey }), 404, 'NOT_FOUND');
      expect(await countRows(sys, 'card_bindings', { card_id: card.id })).to.equal(1);
      expect(await bindingRow(card.id, member.id)).to.equal(undefined);
    });

    it('is for member and app keys: admin and merchant keys get 403', async () => {
      const owner = await createMember(sys);
      const card = await issueCard(sys, { type: 'prepaid', ownerMemberId: owner.id });
      const other = await createMember(sys);
      for (const key of [sys.adminKey, merchantKey]) {
        expectError(await sys.http.post('/v1/cards/bind', { card_no: card.card_no, binding_password: DEFAULT_BINDING_PASSWORD, member_id: other.id }, { key }), 403, 'FORBIDDEN');
      }
      expect(await countRows(sys, 'card_bindings', { card_id: card.id })).to.equal(1);
    });

    let tokenForChecks = '';
    before(async () => {
      tokenForChecks = (await memberWithToken(sys)).token;
    });
    itRefusesMalformedRequests({ sys: () => sys, method: 'POST', path: () => '/v1/cards/bind', key: () => tokenForChecks, state: () => countRows(sys, 'card_bindings') });
  });

  describe('binding limits (MAX_BINDINGS_PER_CARD=3, RATE_LIMIT_BIND_PER_MIN=3)', () => {
    let small: TestSystem;
    before(async () => {
      small = await startSystem({ MAX_BINDINGS_PER_CARD: 3, RATE_LIMIT_BIND_PER_MIN: 3 }, { workers: false });
    });
    after(async () => {
      await small.stop();
    });

    it('answers 422 BINDING_LIMIT_REACHED once the card has MAX_BINDINGS_PER_CARD bindings (owner included)', async () => {
      const owner = await createMember(small);
      const card = await issueCard(small, { type: 'prepaid', ownerMemberId: owner.id });
      for (let i = 0; i < 2; i++) await bind(small, { key: (await memberWithToken(small)).token, cardNo: card.card_no });
      const late = await memberWithToken(small);
      expectError(await small.http.post('/v1/cards/bind', { card_no: card.card_no, binding_password: DEFAULT_BINDING_PASSWORD }, { key: late.token }), 422, 'BINDING_LIMIT_REACHED');
      expect(await countRows(small, 'card_bindings', { card_id: card.id })).to.equal(3);
      expect(await countRows(small, 'card_bindings', { member_id: late.member.id })).to.equal(1); // its own standard card
    });

    it('rate limits binding attempts per member with 429 RATE_LIMITED and Retry-After, even with the right password', async () => {
      const owner = await createMember(small);
      const card = await issueCard(small, { type: 'prepaid', ownerMemberId: owner.id });
      const { member, token } = await memberWithToken(small);
      const limit = small.config.RATE_LIMIT_BIND_PER_MIN;
      // The first `limit` attempts are inside any window's budget; a fixed window can split the next
      // ones over a minute boundary, so within 2 × limit + 1 attempts one must be limited.
      for (let i = 0; i < limit; i++) {
        expectError(await small.http.post('/v1/cards/bind', { card_no: card.card_no, binding_password: `guess-${i}` }, { key: token }), 403, 'BINDING_PASSWORD_INVALID');
      }
      let limited;
      for (let i = 0; i <= limit && !limited; i++) {
        const res = await small.http.post('/v1/cards/bind', { card_no: card.card_no, binding_password: DEFAULT_BINDING_PASSWORD }, { key: token });
        if (res.status === 429) limited = res;
        else await small.deps.db('card_bindings').where({ card_id: card.id, member_id: member.id }).del(); // a success inside a fresh window: undo it, keep trying
      }
      expect(limited, 'a bind attempt was rate limited').to.not.equal(undefined);
      expectError(limited!, 429, 'RATE_LIMITED');
      expect(limited!.body.error.details.bucket).to.equal('bind');
      const retryAfter = Number(limited!.headers.get('retry-after'));
      expect(retryAfter).to.be.within(1, 60);
      expect(await small.deps.db('card_bindings').where({ card_id: card.id, member_id: member.id }).first()).to.equal(undefined);
      // Another member is not limited by this one's attempts.
      await bind(small, { key: (await memberWithToken(small)).token, cardNo: card.card_no });
    });
  });

  describe('DELETE /v1/cards/:id/bindings/:member_id', () => {
    async function family() {
      const owner = await memberWithToken(sys);
      const card = await issueCard(sys, { type: 'prepaid', ownerMemberId: owner.member.id });
      const admin = await memberWithToken(sys);
      const kid = await memberWithToken(sys);
      const viewer = await memberWithToken(sys);
      await bind(sys, { key: admin.token, cardNo: card.card_no, role: 'admin' });
      await bind(sys, { key: kid.token, cardNo: card.card_no });
      await bind(sys, { key: viewer.token, cardNo: card.card_no, role: 'viewer' });
      return { owner, card, admin, kid, viewer };
    }

    async function liveQr(cardId: string, memberId: string) {
      const hash = `test-${cardId}-${memberId}-${Date.now()}`;
      await sys.deps.db('card_qr_state').insert({ card_id: cardId, member_id: memberId, token_hash: hash, expires_at: sys.deps.db.raw("now() + interval '10 minutes'") });
      await sys.deps.db('card_qr_history').insert({ card_id: cardId, member_id: memberId, token_hash: hash, expires_at: sys.deps.db.raw("now() + interval '10 minutes'") });
      return hash;
    }

    it("lets the owner remove a member: the binding goes, the member's live QR is revoked, others' stay", async () => {
      const f = await family();
      const kidQr = await liveQr(f.card.id, f.kid.member.id);
      const adminQr = await liveQr(f.card.id, f.admin.member.id);
      const res = await sys.http.delete(`/v1/cards/${f.card.id}/bindings/${f.kid.member.id}`, { key: f.owner.token });
      expect(res.status).to.equal(200);
      expect(res.body).to.include({ card_id: f.card.id, member_id: f.kid.member.id, role: 'member', removed: true });
      expect(await bindingRow(f.card.id, f.kid.member.id)).to.equal(undefined);
      expect(await countRows(sys, 'card_qr_state', { token_hash: kidQr })).to.equal(0);
      const history = await sys.deps.db('card_qr_history').where({ token_hash: kidQr }).first();
      expect(history.end_reason).to.equal('revoked');
      expect(history.revoked_at).to.be.instanceOf(Date);
      expect(await countRows(sys, 'card_qr_state', { token_hash: adminQr })).to.equal(1);
      expect((await sys.deps.db('card_qr_history').where({ token_hash: adminQr }).first()).end_reason).to.equal(null);
      expectError(await sys.http.get(`/v1/cards/${f.card.id}`, { key: f.kid.token }), 404, 'NOT_FOUND');
      const audit = await lastAudit(sys, 'card', f.card.id);
      expect(audit).to.include({ action: 'card.unbind' });
      expect(audit.context).to.deep.equal({ member_id: f.kid.member.id, role: 'member', qr_revoked: 1 });
    });

    it('lets a card admin remove another member, a member remove itself, and an admin key remove anyone but the owner', async () => {
      const f = await family();
      expect((await sys.http.delete(`/v1/cards/${f.card.id}/bindings/${f.viewer.member.id}`, { key: f.admin.token })).status).to.equal(200);
      expect((await sys.http.delete(`/v1/cards/${f.card.id}/bindings/${f.kid.member.id}`, { key: f.kid.token })).status).to.equal(200);
      expect((await sys.http.delete(`/v1/cards/${f.card.id}/bindings/${f.admin.member.id}`, { key: sys.adminKey })).status).to.equal(200);
      const left = await sys.deps.db('card_bindings').where({ card_id: f.card.id }).select('member_id', 'role');
      expect(left).to.deep.equal([{ member_id: f.owner.member.id, role: 'owner' }]);
    });

    it('refuses plain members and viewers removing someone else with 403, leaving the binding', async () => {
      const f = await family();
      expectError(await sys.http.delete(`/v1/cards/${f.card.id}/bindings/${f.admin.member.id}`, { key: f.kid.token }), 403, 'FORBIDDEN');
      expectError(await sys.http.delete(`/v1/cards/${f.card.id}/bindings/${f.kid.member.id}`, { key: f.viewer.token }), 403, 'FORBIDDEN');
      expect(await countRows(sys, 'card_bindings', { card_id: f.card.id })).to.equal(4);
    });

    it('answers 409 CONFLICT to removing the owner binding, whoever asks', async () => {
      const f = await family();
      for (const key of [sys.adminKey, f.admin.token, f.owner.token]) {
        expectError(await sys.http.delete(`/v1/cards/${f.card.id}/bindings/${f.owner.member.id}`, { key }), 409, 'CONFLICT', 'owner');
      }
      expect((await bindingRow(f.card.id, f.owner.member.id)).role).to.equal('owner');
    });

    it("answers 404 to members who are not bound, for unbound or malformed member ids and unknown cards; 403 to app and merchant keys", async () => {
      const f = await family();
      const stranger = await memberWithToken(sys);
      expectError(await sys.http.delete(`/v1/cards/${f.card.id}/bindings/${f.kid.member.id}`, { key: stranger.token }), 404, 'NOT_FOUND');
      expectError(await sys.http.delete(`/v1/cards/${f.card.id}/bindings/${stranger.member.id}`, { key: sys.adminKey }), 404, 'NOT_FOUND');
      expectError(await sys.http.delete(`/v1/cards/${f.card.id}/bindings/not-a-uuid`, { key: sys.adminKey }), 404, 'NOT_FOUND');
      expectError(await sys.http.delete(`/v1/cards/${NO_SUCH_ID}/bindings/${f.kid.member.id}`, { key: sys.adminKey }), 404, 'NOT_FOUND');
      expectError(await sys.http.delete(`/v1/cards/${f.card.id}/bindings/${f.kid.member.id}`, { key: appKey }), 403, 'FORBIDDEN');
      expectError(await sys.http.delete(`/v1/cards/${f.card.id}/bindings/${f.kid.member.id}`, { key: merchantKey }), 403, 'FORBIDDEN');
      expect(await countRows(sys, 'card_bindings', { card_id: f.card.id })).to.equal(4);
    });

    let target = { card: '', member: '' };
    before(async () => {
      const f = await family();
      target = { card: f.card.id, member: f.kid.member.id };
    });
    itRefusesMalformedRequests({
      sys: () => sys,
      method: 'DELETE',
      path: () => `/v1/cards/${target.card}/bindings/${target.member}`,
      key: () => sys.adminKey,
      state: () => countRows(sys, 'card_bindings', { card_id: target.card }),
    });
  });

  describe('POST /v1/cards/:id/points-adjustments', () => {
    const pointsState = async (cardId: string) => {
      const card = await cardRow(cardId);
      const ledger = await sys.deps.db('point_ledger').where({ card_id: cardId }).sum({ s: 'delta' }).count({ n: '*' }).first();
      return { points: card.points, level: card.level, ledgerSum: Number(ledger?.s ?? 0), ledgerRows: Number(ledger?.n ?? 0) };
    };

    it('adds and removes points with a ledger row each, recomputing the level, with audit events', async () => {
      const owner = await createMember(sys);
      const card = await issueCard(sys, { type: 'prepaid', ownerMemberId: owner.id });
      const up = await sys.http.post(`/v1/cards/${card.id}/points-adjustments`, { delta: 1500, reason: 'store opening promo' }, { key: sys.adminKey });
      expect(up.status).to.equal(201);
      expect(up.body).to.deep.equal({ card_id: card.id, delta: 1500, points: 1500, level: 1 });
      const down = await sys.http.post(`/v1/cards/${card.id}/points-adjustments`, { delta: -600, reason: 'correction' }, { key: sys.adminKey });
      expect(down.body).to.deep.equal({ card_id: card.id, delta: -600, points: 900, level: 0 });
      expect(await pointsState(card.id)).to.deep.equal({ points: 900, level: 0, ledgerSum: 900, ledgerRows: 2 });
      const rows = await sys.deps.db('point_ledger').where({ card_id: card.id }).orderBy('id');
      expect(rows.map((r) => [r.reason, r.note, r.points_after, r.transaction_id])).to.deep.equal([
        ['adjustment', 'store opening promo', 1500, null],
        ['adjustment', 'correction', 900, null],
      ]);
      const keyId = (await sys.deps.db('audit_events').where({ object_id: card.id, action: 'card.points_adjust' }).orderBy('id').first()).actor_id;
      expect(rows[0].actor_key_id).to.equal(keyId);
      const audit = await lastAudit(sys, 'card', card.id);
      expect(audit.context).to.deep.equal({ delta: -600, reason: 'correction', points_after: 900 });
    });

    it('works on standard cards', async () => {
      const owner = await createMember(sys);
      const res = await sys.http.post(`/v1/cards/${owner.cards[0]!.id}/points-adjustments`, { delta: 10000, reason: 'migration from old system' }, { key: sys.adminKey });
      expect(res.body).to.include({ points: 10000, level: 3 });
    });

    it('refuses a result below 0 with 422 UNPROCESSABLE and cards without points with 422, changing nothing', async () => {
      const owner = await createMember(sys);
      const card = owner.cards[0]!;
      await sys.http.post(`/v1/cards/${card.id}/points-adjustments`, { delta: 100, reason: 'seed' }, { key: sys.adminKey });
      const before = await pointsState(card.id);
      expectError(await sys.http.post(`/v1/cards/${card.id}/points-adjustments`, { delta: -101, reason: 'too much' }, { key: sys.adminKey }), 422, 'UNPROCESSABLE', 'below 0');
      expect(await pointsState(card.id)).to.deep.equal(before);
      const corporate = await issueCard(sys, { type: 'corporate', ownerMemberId: owner.id });
      expectError(await sys.http.post(`/v1/cards/${corporate.id}/points-adjustments`, { delta: 5, reason: 'x' }, { key: sys.adminKey }), 422, 'UNPROCESSABLE', 'corporate');
      expect((await pointsState(corporate.id)).ledgerRows).to.equal(0);
    });

    it('refuses bad bodies with 400, unknown cards with 404 and non-admins with 403, changing nothing', async () => {
      const { token, standardCard } = await memberWithToken(sys);
      const id = standardCard.id;
      const cases: [Record<string, unknown>, string][] = [
        [{ delta: 0, reason: 'x' }, 'delta'],
        [{ delta: 1.5, reason: 'x' }, 'delta'],
        [{ delta: '10', reason: 'x' }, 'delta'],
        [{ delta: 2_000_000_000, reason: 'x' }, 'delta'],
        [{ reason: 'x' }, 'delta'],
        [{ delta: 10 }, 'reason'],
        [{ delta: 10, reason: '' }, 'reason'],
        [{ delta: 10, reason: 'r'.repeat(201) }, 'reason'],
        [{ delta: 10, reason: 'x', points: 10 }, 'points'],
      ];
      for (const [body, field] of cases) expectError(await sys.http.post(`/v1/cards/${id}/points-adjustments`, body, { key: sys.adminKey }), 400, 'VALIDATION_ERROR', field);
      expectError(await sys.http.post(`/v1/cards/${NO_SUCH_ID}/points-adjustments`, { delta: 1, reason: 'x' }, { key: sys.adminKey }), 404, 'NOT_FOUND');
      for (const key of [appKey, token, merchantKey]) expectError(await sys.http.post(`/v1/cards/${id}/points-adjustments`, { delta: 1, reason: 'x' }, { key }), 403, 'FORBIDDEN');
      expect(await pointsState(id)).to.deep.equal({ points: 0, level: 0, ledgerSum: 0, ledgerRows: 0 });
    });

    let target = '';
    before(async () => {
      target = (await createMember(sys)).cards[0]!.id;
    });
    itRefusesMalformedRequests({ sys: () => sys, method: 'POST', path: () => `/v1/cards/${target}/points-adjustments`, key: () => sys.adminKey, state: () => pointsState(target) });
  });
});
