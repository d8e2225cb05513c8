import { randomBytes, randomInt } from 'node:crypto';
import { expect } from 'chai';
import { maskCardNo } from '../../domain/masking.js';
import { createAppKey, createMember, createMerchant, issueCard, lastAudit, memberToken, type CardJson, type MemberJson } from '../helpers/fixtures.js';
import { charge, expectFailed, expectSucceeded, issueQr, recharge, refund, type OperationJson } from '../helpers/money.js';
import { expectError } from '../helpers/request-checks.js';
import { startSystem, type TestSystem } from '../helpers/system.js';

const NO_SUCH_ID = '00000000-0000-4000-8000-000000000000';

/** Row counts and sums of everything financial about a set of cards: erasure must leave them as they are. */
async function financialSnapshot(sys: TestSystem, cardIds: string[]) {
  const { rows } = await sys.deps.db.raw<{ rows: Record<string, number>[] }>(
    `SELECT (SELECT count(*) FROM transactions WHERE card_id = ANY (:ids)) AS tx_count,
            (SELECT coalesce(sum(final_amount_minor), 0) FROM transactions WHERE card_id = ANY (:ids)) AS tx_final,
            (SELECT count(*) FROM transactions WHERE card_id = ANY (:ids) AND member_id IS NOT NULL) AS tx_with_member,
            (SELECT count(*) FROM balance_ledger WHERE card_id = ANY (:ids)) AS bl_count,
            (SELECT coalesce(sum(delta_minor), 0) FROM balance_ledger WHERE card_id = ANY (:ids)) AS bl_sum,
            (SELECT count(*) FROM point_ledger WHERE card_id = ANY (:ids)) AS pl_count,
            (SELECT coalesce(sum(delta), 0) FROM point_ledger WHERE card_id = ANY (:ids)) AS pl_sum,
            (SELECT coalesce(sum(balance_minor), 0) FROM member_cards WHERE id = ANY (:ids)) AS balances,
            (SELECT coalesce(sum(points), 0) FROM member_cards WHERE id = ANY (:ids)) AS points,
            (SELECT count(*) FROM operations WHERE card_id = ANY (:ids) AND status = 'succeeded') AS ops_succeeded`,
    { ids: cardIds },
  );
  return Object.fromEntries(Object.entries(rows[0]!).map(([k, v]) => [k, Number(v)]));
}

describe('privacy: member export, erasure and masking', function () {
  this.timeout(30_000);
  let sys: TestSystem;
  let appKey: string;
  let merchantKey: string;
  let member: MemberJson;
  let token: string;
  let prepaid: CardJson;
  let payment: OperationJson;
  let pii: { name: string; phone: string; email: string; externalId: string };
  let sharedQr: string;

  before(async () => {
    sys = await startSystem();
    appKey = await createAppKey(sys);
    merchantKey = (await createMerchant(sys)).key;
    pii = { name: '王小明', phone: `09${String(randomInt(10 ** 7, 10 ** 8))}`, email: `p${randomBytes(5).toString('hex')}@example.com`, externalId: `U${randomBytes(8).toString('hex')}` };
    member = await createMember(sys, { name: pii.name, phone: pii.phone, email: pii.email, identity: { provider: 'line', external_id: pii.externalId } });
    token = await memberToken(sys, member.id);
    prepaid = await issueCard(sys, { type: 'prepaid', ownerMemberId: member.id });
    expectSucceeded(await recharge(sys, prepaid.id, { amount: '1000.00' }), 'recharge');
    payment = expectSucceeded(await charge(sys, merchantKey, { qr: await issueQr(sys, prepaid.id, token), amount: '299.00' }), 'payment');
    expectSucceeded(await refund(sys, merchantKey, { original_tx_no: payment.result!.tx_no as string, amount: '50.00' }), 'refund');
    expectSucceeded(await charge(sys, merchantKey, { qr: await issueQr(sys, member.cards[0]!.id, token), amount: '120.00', payment_method: 'cash' }), 'standard payment');
  });
  after(async () => {
    await sys.stop();
  });

  describe('what merchant-role readers see', () => {
    it('a payment result carries the member name and card number masked', async () => {
      expect(payment.result!.member).to.deep.equal({ name: '王**' });
      expect(payment.result!.card.card_no).to.equal(maskCardNo(prepaid.card_no));
      expect(payment.result!.card.card_no).to.match(/^.{4}\*{8}.{4}$/);
      expect(payment.result!.card.card_no).to.not.equal(prepaid.card_no);
      const read = await sys.http.get(`/v1/operations/${payment.id}`, { key: merchantKey });
      expect(read.status).to.equal(200);
      expect(read.body.result.member).to.deep.equal({ name: '王**' });
      for (const secret of [prepaid.card_no, pii.name, pii.phone, pii.email, member.id]) expect(read.text).to.not.contain(secret);
    });

    it('GET /v1/merchant/transactions has no member id and masked card numbers', async () => {
      const res = await sys.http.get('/v1/merchant/transactions', { key: merchantKey });
      expect(res.status).to.equal(200);
      const tx = (res.body.data as Record<string, unknown>[]).find((t) => t.tx_no === payment.result!.tx_no);
      expect(tx, res.text).to.not.equal(undefined);
      expect(tx).to.not.have.property('member_id');
      expect(tx).to.not.have.property('card_id');
      expect(tx!.card_no).to.equal(maskCardNo(prepaid.card_no));
      expect(res.body.data).to.have.length(3); // payment, refund, standard-card payment
      for (const t of res.body.data as Record<string, unknown>[]) expect(t.card_no).to.match(/^.{4}\*{8}.{4}$/);
      for (const secret of [prepaid.card_no, member.cards[0]!.card_no, pii.name, pii.phone, pii.email, member.id]) expect(res.text).to.not.contain(secret);
    });

    it('QR validation shows the card masked', async () => {
      const res = await sys.http.post('/v1/qr/validate', { qr: await issueQr(sys, prepaid.id, token) }, { key: merchantKey });
      expect(res.status).to.equal(200);
      expect(res.body.valid).to.equal(true);
      expect(res.body.card.masked).to.equal(maskCardNo(prepaid.card_no));
      expect(res.text).to.not.contain(prepaid.card_no);
    });
  });

  describe('GET /v1/members/:id/export', () => {
    it('returns profile, identities, cards, transactions and ledgers, with no secret hashes', async () => {
      const res = await sys.http.get(`/v1/members/${member.id}/export`, { key: sys.adminKey });
      expect(res.status, res.text).to.equal(200);
      expect(res.headers.get('content-disposition')).to.equal(`attachment; filename="member-${member.member_no}.json"`);
      const body = res.body;
      expect(body.member_id).to.equal(member.id);
      expect(body.profile).to.include({ id: member.id, member_no: member.member_no, name: pii.name, phone: pii.phone, email: pii.email, status: 'active' });
      expect(body.identities.map((i: { provider: string; external_id: string }) => [i.provider, i.external_id])).to.deep.equal([['line', pii.externalId]]);
      expect(body.cards.map((c: { id: string }) => c.id).sort()).to.deep.equal([member.cards[0]!.id, prepaid.id].sort());
      for (const c of body.cards) {
        expect(c).to.not.have.property('binding_password_hash');
        expect(c.binding_role).to.equal('owner');
      }
      // No bcrypt hash, key hash or QR token hash anywhere in the document.
      expect(res.text).to.not.match(/\$2[aby]\$\d\d\$/);
      for (const field of ['binding_password', 'key_hash', 'token_hash']) expect(res.text).to.not.contain(field);
      const txTypes = body.transactions.map((t: { type: string }) => t.type).sort();
      expect(txTypes).to.deep.equal(['payment', 'payment', 'recharge', 'refund']);
      expect(body.transactions.map((t: { tx_no: string }) => t.tx_no)).to.include(payment.result!.tx_no);

      const card = await sys.deps.db('member_cards').where({ id: prepaid.id }).first('balance_minor', 'points');
      const ofCard = (rows: { card_id: string }[]) => rows.filter((r) => r.card_id === prepaid.id);
      const balanceSum = ofCard(body.balance_ledger).reduce((s: number, r) => s + Number((r as unknown as { delta_minor: number }).delta_minor), 0);
      const pointSum = ofCard(body.point_ledger).reduce((s: number, r) => s + Number((r as unknown as { delta: number }).delta), 0);
      expect(ofCard(body.balance_ledger)).to.have.length(3); // recharge, payment, refund
      expect(balanceSum).to.equal(Number(card.balance_minor)).and.equal(100_000 - 29_900 + 5_000);
      expect(pointSum).to.equal(Number(card.points));
      expect(body.member_tokens).to.have.length(1);
      expect(body.member_tokens[0]).to.have.keys(['id', 'prefix', 'status', 'expires_at', 'created_at']);
      expect(res.text).to.not.contain(token);
      expect(body.qr_history.length).to.be.at.least(3);

      const audit = await lastAudit(sys, 'member', member.id);
      expect(audit).to.include({ action: 'member.export', role: 'admin' });
    });

    it('lists a shared card the member is bound to, not only its own', async () => {
      const other = await createMember(sys, { name: '林美麗' });
      const shared = await issueCard(sys, { type: 'corporate', ownerMemberId: other.id, fixedDiscount: '0.900' });
      const bound = await sys.http.post('/v1/cards/bind', { card_no: shared.card_no, binding_password: 'Family-123456', member_id: member.id }, { key: appKey });
      expect(bound.status, bound.text).to.equal(201);
      const res = await sys.http.get(`/v1/members/${member.id}/export`, { key: sys.adminKey });
      const card = res.body.cards.find((c: { id: string }) => c.id === shared.id);
      expect(card?.binding_role).to.equal('member');
      expect(card).to.not.have.property('binding_password_hash');
      expect(res.text).to.not.contain('林美麗');
      // Kept for the erasure tests: a live QR of this member on someone else's card.
      sharedQr = await issueQr(sys, shared.id, token);
    });
  });

  describe('who may export and erase', () => {
    it('merchant, app and member keys get 403 on both routes, and nothing changes', async () => {
      const auditsBefore = await sys.deps.db('audit_events').where({ object_type: 'member', object_id: member.id }).count<{ n: number }>({ n: '*' }).first();
      for (const [who, key] of [
        ['merchant', merchantKey],
        ['app', appKey],
        ['the member itself', token],
      ] as const) {
        expectError(await sys.http.get(`/v1/members/${member.id}/export`, { key }), 403, 'FORBIDDEN');
        const erase = await sys.http.post(`/v1/members/${member.id}/erase`, {}, { key });
        expect(erase.status, who).to.equal(403);
        expect(erase.body.error.code, who).to.equal('FORBIDDEN');
      }
      expect((await sys.deps.db('member_profiles').where({ id: member.id }).first()).status).to.equal('active');
      const auditsAfter = await sys.deps.db('audit_events').where({ object_type: 'member', object_id: member.id }).count<{ n: number }>({ n: '*' }).first();
      expect(Number(auditsAfter!.n)).to.equal(Number(auditsBefore!.n));
    });

    it('an unknown or malformed member id is 404, and no key is 401', async () => {
      for (const id of [NO_SUCH_ID, 'not-a-uuid']) {
        expectError(await sys.http.get(`/v1/members/${id}/export`, { key: sys.adminKey }), 404, 'NOT_FOUND');
        expectError(await sys.http.post(`/v1/members/${id}/erase`, {}, { key: sys.adminKey }), 404, 'NOT_FOUND');
      }
      expectError(await sys.http.get(`/v1/members/${member.id}/export`), 401, 'UNAUTHENTICATED');
      expectError(await sys.http.post(`/v1/members/${member.id}/erase`, {}), 401, 'UNAUTHENTICATED');
    });
  });

  describe('POST /v1/members/:id/erase', () => {
    let before: Record<string, number>;
    let liveQr: string;
    let cardIds: string[];

    it('anonymizes the member, drops identities, tokens and live QRs, keeps the books', async () => {
      cardIds = [member.cards[0]!.id, prepaid.id];
      liveQr = await issueQr(sys, prepaid.id, token);
      expect((await sys.http.get(`/v1/members/${member.id}`, { key: token })).status).to.equal(200);
      before = await financialSnapshot(sys, cardIds);
      expect(before.tx_count).to.equal(4);

      const res = await sys.http.post(`/v1/members/${member.id}/erase`, {}, { key: sys.adminKey });
      expect(res.status, res.text).to.equal(200);
      expect(res.body).to.deep.equal({ id: member.id, member_no: member.member_no, status: 'erased' });

      const row = await sys.deps.db('member_profiles').where({ id: member.id }).first();
      expect(row.status).to.equal('erased');
      expect(row.erased_at).to.be.instanceOf(Date);
      expect(row.name).to.not.contain('王小明');
      expect(row.phone).to.equal(null);
      expect(row.email).to.equal(null);
      expect(row.member_no).to.equal(member.member_no);
      const view = await sys.http.get(`/v1/members/${member.id}`, { key: sys.adminKey });
      expect(view.status).to.equal(200);
      expect(view.body).to.include({ status: 'erased', phone: null, email: null });
      expect(view.body.identities ?? []).to.deep.equal([]);
      expect(await sys.deps.db('member_external_identities').where({ member_id: member.id })).to.deep.equal([]);
      expect(await sys.deps.db('card_qr_state').where({ member_id: member.id })).to.deep.equal([]);
      const keys = await sys.deps.db('api_keys').where({ member_id: member.id }).select('status');
      expect(keys.length).to.be.at.least(1);
      expect(keys.every((k: { status: string }) => k.status === 'revoked')).to.equal(true);

      expect(await financialSnapshot(sys, cardIds)).to.deep.equal(before);
      const audit = await lastAudit(sys, 'member', member.id);
      expect(audit).to.include({ action: 'member.erase', role: 'admin' });
    });

    it('the member token is refused with 401 afterwards', async () => {
      expectError(await sys.http.get(`/v1/members/${member.id}`, { key: token }), 401, 'UNAUTHENTICATED');
      expectError(await sys.http.get(`/v1/cards/${prepaid.id}`, { key: token }), 401, 'UNAUTHENTICATED');
    });

    it('the QRs issued before erasure (own card and a bound card) no longer pay, and change nothing', async () => {
      for (const qr of [liveQr, sharedQr]) {
        const validated = await sys.http.post('/v1/qr/validate', { qr }, { key: merchantKey });
        expect(validated.status).to.equal(200);
        expect(validated.body.valid).to.equal(false);
      }
      expectFailed(await charge(sys, merchantKey, { qr: liveQr, amount: '10.00' }), 'QR_EXPIRED_OR_INVALID');
      expect(await financialSnapshot(sys, cardIds)).to.deep.equal(before);
      const history = await sys.deps.db('card_qr_history').where({ member_id: member.id }).whereNull('end_reason');
      expect(history, 'every QR of the member has ended').to.deep.equal([]);
    });

    it('leaves the name, phone, email and identity nowhere in the database or the export', async () => {
      const needles = [pii.phone, pii.email, pii.externalId];
      const { rows } = await sys.deps.db.raw<{ rows: { n: number }[] }>(
        `SELECT (SELECT count(*) FROM member_profiles WHERE row_to_json(member_profiles)::text LIKE ANY (:likes))
              + (SELECT count(*) FROM member_external_identities WHERE external_id = ANY (:needles))
              + (SELECT count(*) FROM audit_events WHERE row_to_json(audit_events)::text LIKE ANY (:likes))
              + (SELECT count(*) FROM events WHERE data::text LIKE ANY (:likes))
              + (SELECT count(*) FROM operations WHERE row_to_json(operations)::text LIKE ANY (:likes)) AS n`,
        { likes: needles.map((n) => `%${n}%`), needles },
      );
      expect(Number(rows[0]!.n)).to.equal(0);
      expect(Number((await sys.deps.db('member_profiles').where({ id: member.id }).whereRaw('name LIKE ?', ['%小明%']).count<{ n: number }>({ n: '*' }).first())!.n)).to.equal(0);

      const exported = await sys.http.get(`/v1/members/${member.id}/export`, { key: sys.adminKey });
      expect(exported.status).to.equal(200);
      expect(exported.body.profile.status).to.equal('erased');
      expect(exported.body.identities).to.deep.equal([]);
      expect(exported.body.transactions).to.have.length(4);
      for (const secret of [...needles, '王小明']) expect(exported.text).to.not.contain(secret);
    });

    it('frees the external identity for a new member', async () => {
      const again = await createMember(sys, { name: '新會員', identity: { provider: 'line', external_id: pii.externalId } });
      expect(again.identities.map((i) => i.external_id)).to.deep.equal([pii.externalId]);
    });

    it('refuses new member tokens for the erased member', async () => {
      const res = await sys.http.post(`/v1/members/${member.id}/tokens`, {}, { key: sys.adminKey });
      expect(res.status).to.equal(422);
      expect(await sys.deps.db('api_keys').where({ member_id: member.id, status: 'active' })).to.deep.equal([]);
    });

    it('a second erase is 409 CONFLICT and writes no audit event', async () => {
      const audits = await sys.deps.db('audit_events').where({ object_type: 'member', object_id: member.id, action: 'member.erase' });
      expectError(await sys.http.post(`/v1/members/${member.id}/erase`, {}, { key: sys.adminKey }), 409, 'CONFLICT');
      expect(await sys.deps.db('audit_events').where({ object_type: 'member', object_id: member.id, action: 'member.erase' })).to.have.length(audits.length);
    });
  });
});
