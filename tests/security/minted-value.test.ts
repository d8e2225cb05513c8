import { randomUUID } from 'node:crypto';
import { expect } from 'chai';
import { sha256 } from '../../domain/tokens.js';
import { countRows, createAppKey, createMember, issueCard, memberWithToken } from '../helpers/fixtures.js';
import { getCard, recharge } from '../helpers/money.js';
import { startSystem, type TestSystem } from '../helpers/system.js';
import { expectCode } from './helpers.js';

/**
 * Finding: an app key could mint stored value out of nothing (a voucher of any face value, no
 * money received). Now: an app key's voucher needs a unique `payment_reference` (the provider's
 * id, like recharges) and a face value ≤ MAX_VOUCHER_VALUE; admins may issue without one, up to
 * MAX_AMOUNT, and the audit trail names them.
 */

const MAX_VOUCHER_MINOR = 10_000; // MAX_VOUCHER_VALUE = 100.00 for this file

describe('security: minted value (vouchers)', function () {
  this.timeout(30_000);
  let sys: TestSystem;
  let appKey: string;

  before(async () => {
    sys = await startSystem({ MAX_VOUCHER_VALUE: MAX_VOUCHER_MINOR, CARD_PARTITIONS: 2 }, { workers: false });
    appKey = await createAppKey(sys);
  });
  after(async () => {
    await sys?.stop();
  });

  const vouchersOf = (memberId: string) => countRows(sys, 'member_cards', { owner_member_id: memberId, type: 'voucher' });
  const createVoucher = (body: Record<string, unknown>, key = appKey) => sys.http.post('/v1/cards', { type: 'voucher', ...body }, { key });

  it('an app key without payment_reference → 400 VALIDATION_ERROR naming payment_reference, no card', async () => {
    const member = await createMember(sys);
    const res = await createVoucher({ owner_member_id: member.id, face_value: '50.00' });
    expectCode(res, 400, 'VALIDATION_ERROR');
    expect(JSON.stringify(res.body.error), 'the error names payment_reference').to.contain('payment_reference');
    expect(await vouchersOf(member.id)).to.equal(0);
  });

  it('an app key over MAX_VOUCHER_VALUE → 400 AMOUNT_INVALID, no card; exactly MAX_VOUCHER_VALUE is fine', async () => {
    const member = await createMember(sys);
    const over = await createVoucher({ owner_member_id: member.id, face_value: '100.01', payment_reference: `pi_${randomUUID()}` });
    expectCode(over, 400, 'AMOUNT_INVALID', 'face_value 100.01');
    const far = await createVoucher({ owner_member_id: member.id, face_value: '5000.00', payment_reference: `pi_${randomUUID()}` });
    expectCode(far, 400, 'AMOUNT_INVALID', 'face_value 5000.00');
    expect(await vouchersOf(member.id)).to.equal(0);
    const atMax = await createVoucher({ owner_member_id: member.id, face_value: '100.00', payment_reference: `pi_${randomUUID()}` });
    expect(atMax.status, atMax.text).to.equal(201);
    expect(atMax.body.balance).to.equal('100.00');
    expect(await vouchersOf(member.id)).to.equal(1);
  });

  it('with a payment_reference → 201; the same reference again → 409 PAYMENT_REFERENCE_USED and no second card', async () => {
    const member = await createMember(sys);
    const reference = `pi_${randomUUID()}`;
    const first = await createVoucher({ owner_member_id: member.id, face_value: '30.00', payment_reference: reference });
    expect(first.status, first.text).to.equal(201);
    expect(first.body.type).to.equal('voucher');
    expect(first.body.balance).to.equal('30.00');

    const again = await createVoucher({ owner_member_id: member.id, face_value: '30.00', payment_reference: reference });
    expectCode(again, 409, 'PAYMENT_REFERENCE_USED', 'same reference, same member');
    const otherMember = await createMember(sys);
    const elsewhere = await createVoucher({ owner_member_id: otherMember.id, face_value: '20.00', payment_reference: reference });
    expectCode(elsewhere, 409, 'PAYMENT_REFERENCE_USED', 'same reference, another member');
    expect(await vouchersOf(member.id)).to.equal(1);
    expect(await vouchersOf(otherMember.id)).to.equal(0);
  });

  it('an admin key may issue without payment_reference above MAX_VOUCHER_VALUE (up to MAX_AMOUNT), and the audit event names the admin', async () => {
    const member = await createMember(sys);
    const res = await createVoucher({ owner_member_id: member.id, face_value: '5000.00' }, sys.adminKey);
    expect(res.status, res.text).to.equal(201);
    expect(res.body.balance).to.equal('5000.00');

    const adminKeyRow = await sys.deps.db('api_keys').where({ key_hash: sha256(sys.adminKey) }).first('id');
    expect(adminKeyRow, 'admin key row').to.not.equal(undefined);
    const audit = await sys.http.get(`/v1/audit/events?object_type=card&object_id=${res.body.id}`, { key: sys.adminKey });
    expect(audit.status, audit.text).to.equal(200);
    const created = (audit.body.data as any[]).find((e) => /card\.(create|issue)/.test(e.action));
    expect(created, `card creation event in ${audit.text}`).to.not.equal(undefined);
    expect(created.role, audit.text).to.equal('admin');
    expect(created.actor_id, audit.text).to.equal(adminKeyRow.id);

    const overMax = await createVoucher({ owner_member_id: member.id, face_value: String(sys.config.MAX_AMOUNT / 100 + 1) + '.00' }, sys.adminKey);
    expectCode(overMax, 400, 'AMOUNT_INVALID', 'admin voucher over MAX_AMOUNT');
  });
});

/**
 * Not in the brief, the same class of finding: API.md's recharge row says member tokens may not
 * recharge (403) and app keys must give the provider's `payment_reference` (unique per method →
 * PAYMENT_REFERENCE_USED). Otherwise a member can credit its own card with money never received.
 */
describe('security: minted value (recharges, API.md contract)', function () {
  this.timeout(30_000);
  let sys: TestSystem;
  let appKey: string;

  before(async () => {
    sys = await startSystem({ CARD_PARTITIONS: 2 });
    appKey = await createAppKey(sys);
  });
  after(async () => {
    await sys?.stop();
  });

  it('a member token cannot recharge its own prepaid card: 403 FORBIDDEN, balance unchanged, no operation', async () => {
    const { member, token } = await memberWithToken(sys);
    const card = await issueCard(sys, { type: 'prepaid', ownerMemberId: member.id });
    const res = await recharge(sys, card.id, { amount: '500.00', payment_method: 'cash' }, { key: token });
    expectCode(res, 403, 'FORBIDDEN', 'member token recharge');
    expect((await getCard(sys, card.id)).balance).to.equal('0.00');
    expect(await countRows(sys, 'operations', { card_id: card.id })).to.equal(0);
  });

  it('an app key recharge without payment_reference → 400 VALIDATION_ERROR naming it; with one → succeeds once, the same reference again is refused', async () => {
    const member = await createMember(sys);
    const card = await issueCard(sys, { type: 'prepaid', ownerMemberId: member.id });
    const missing = await recharge(sys, card.id, { amount: '50.00', payment_method: 'credit_card' }, { key: appKey });
    expectCode(missing, 400, 'VALIDATION_ERROR', 'app recharge without payment_reference');
    expect(JSON.stringify(missing.body.error)).to.contain('payment_reference');
    expect((await getCard(sys, card.id)).balance).to.equal('0.00');

    const reference = `ch_${randomUUID()}`;
    const body = { amount: '50.00', payment_method: 'credit_card', payment_reference: reference } as never;
    const first = await recharge(sys, card.id, body, { key: appKey });
    expect(first.status, first.text).to.equal(200);
    expect(first.body.status, first.text).to.equal('succeeded');
    const again = await recharge(sys, card.id, body, { key: appKey });
    const code = again.body?.error?.code;
    expect(code, `second use of the reference: ${again.text}`).to.equal('PAYMENT_REFERENCE_USED');
    expect((await getCard(sys, card.id)).balance, 'credited once').to.equal('50.00');
  });

  it('a recharge that failed credited nothing, so its payment_reference may credit a later one (once)', async () => {
    const member = await createMember(sys);
    const card = await issueCard(sys, { type: 'prepaid', ownerMemberId: member.id });
    const body = { amount: '40.00', payment_method: 'credit_card', payment_reference: `ch_${randomUUID()}` } as never;
    expect((await sys.http.post(`/v1/cards/${card.id}/freeze`, {}, { key: sys.adminKey })).status).to.equal(200);
    const refused = await recharge(sys, card.id, body, { key: appKey });
    expect(refused.body.status, refused.text).to.equal('failed');
    expect(refused.body.error?.code).to.equal('CARD_NOT_ACTIVE');
    expect((await sys.http.post(`/v1/cards/${card.id}/unfreeze`, {}, { key: sys.adminKey })).status).to.equal(200);

    const retried = await recharge(sys, card.id, body, { key: appKey });
    expect(retried.body.status, retried.text).to.equal('succeeded');
    expectCode(await recharge(sys, card.id, body, { key: appKey }), 409, 'PAYMENT_REFERENCE_USED', 'after the credit');
    expect((await getCard(sys, card.id)).balance, 'credited once').to.equal('40.00');
  });
});
