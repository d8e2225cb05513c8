import { expect } from 'chai';
import { sha256 } from '../../domain/tokens.js';
import { runCli } from '../helpers/cli.js';
import { freshDatabase } from '../helpers/fresh-database.js';
import { closeCard, replaceCard, transfer } from '../helpers/card-ops.js';
import { adjust, putLimits } from '../helpers/operator-money.js';
import { bind, createAppKey, createMember, createMerchant, DEFAULT_BINDING_PASSWORD, issueCard, memberToken } from '../helpers/fixtures.js';
import { charge, chargeOk, expectError, expectFailed, expectLedgersMatch, expectSucceeded, getCard, issueQr, recharge, rechargeOk, refund } from '../helpers/money.js';
import { startSystem, type TestSystem } from '../helpers/system.js';

const luhnOk = (digits: string) =>
  [...digits].reverse().reduce((sum, ch, i) => {
    const d = Number(ch) * (i % 2 ? 2 : 1);
    return sum + (d > 9 ? d - 9 : d);
  }, 0) %
    10 ===
  0;

/** Card replacement and card close with payout over HTTP (API.md "Operator money tools"). */
describe('e2e: card replacement and card close', function () {
  this.timeout(60_000);
  let sys: TestSystem;
  let database: Awaited<ReturnType<typeof freshDatabase>>;
  let merchantKey: string;

  before(async () => {
    database = await freshDatabase('mps_cardops');
    sys = await startSystem({}, { databaseUrl: database.url });
    merchantKey = (await createMerchant(sys)).key;
  });
  after(async () => {
    await sys?.stop();
    await database?.drop();
  });

  describe('replacement', () => {
    it('the owner replaces a lost card: a new number with the balance, points, level and bindings; the old card closed with replaced_by, its QR ended', async () => {
      const owner = await createMember(sys);
      const ownerToken = await memberToken(sys, owner.id);
      const old = await issueCard(sys, { type: 'prepaid', ownerMemberId: owner.id });
      const relative = await createMember(sys);
      const relativeToken = await memberToken(sys, relative.id);
      await bind(sys, { key: relativeToken, cardNo: old.card_no });
      await rechargeOk(sys, old.id, '2000.00');
      await chargeOk(sys, merchantKey, old.id, '1200.00'); // 1200 points: silver
      const oldQr = await issueQr(sys, old.id, relativeToken);

      const op = expectSucceeded(await replaceCard(sys, old.id, 'lost', { key: ownerToken }), 'replace');
      expect(op.type).to.equal('card_replacement');
      const fresh = op.result!.new_card;
      expect(fresh).to.include({ balance: '800.00', points: 1200, level: 1 });
      expect(fresh.card_no).to.match(/^8802\d{12}$/).and.not.equal(old.card_no);
      expect(luhnOk(fresh.card_no)).to.equal(true);

      const oldView = await sys.http.get(`/v1/cards/${old.id}`, { key: ownerToken });
      expect(oldView.status, oldView.text).to.equal(200);
      expect(oldView.body).to.include({ status: 'closed', replaced_by: fresh.id, balance: '0.00', points: 0 });
      const newView = await sys.http.get(`/v1/cards/${fresh.id}`, { key: ownerToken });
      expect(newView.body).to.include({ status: 'active', replaced_by: null, balance: '800.00', points: 1200, level: 1, type: 'prepaid', owner_member_id: owner.id, discount_rate: '0.950' });
      expect(newView.body.role).to.equal('owner');
      // The relative's binding moved with its role; the old card is no longer theirs to see.
      expect((await sys.http.get(`/v1/cards/${fresh.id}`, { key: relativeToken })).body.role).to.equal('member');
      expectError(await sys.http.get(`/v1/cards/${old.id}`, { key: relativeToken }), 404, 'NOT_FOUND');

      // Ledgers: a transfer_debit on the old card, a transfer_credit on the new, the points on both; each card's balance = Σ its ledger.
      await expectLedgersMatch(sys, old.id, { balance: 0, points: 0 });
      await expectLedgersMatch(sys, fresh.id, { balance: 80_000, points: 1200 });
      const txs = await sys.deps.db('transactions').where({ operation_id: op.id }).orderBy('type');
      expect(txs.map((t) => [t.type, t.card_id, Number(t.final_amount_minor)])).to.deep.equal([
        ['transfer_credit', fresh.id, 80_000],
        ['transfer_debit', old.id, 80_000],
      ]);
      const points = await sys.deps.db('point_ledger').where({ reason: 'card_replacement' }).whereIn('card_id', [old.id, fresh.id]).orderBy('delta');
      expect(points.map((p) => [p.card_id, Number(p.delta)])).to.deep.equal([
        [old.id, -1200],
        [fresh.id, 1200],
      ]);

      // The old QR is gone; a new QR for the old card is refused; the new card pays.
      expect(await sys.deps.db('card_qr_state').where({ card_id: old.id })).to.have.length(0);
      expect((await sys.deps.db('card_qr_history').where({ token_hash: sha256(oldQr) }).first()).end_reason).to.equal('revoked');
      expectFailed(await charge(sys, merchantKey, { qr: oldQr, amount: '1.00' }), 'QR_EXPIRED_OR_INVALID');
      expectError(await sys.http.post(`/v1/cards/${old.id}/qr`, {}, { key: ownerToken }), 422, 'CARD_NOT_ACTIVE');
      expectSucceeded(await charge(sys, merchantKey, { qr: await issueQr(sys, fresh.id, relativeToken), amount: '100.00' }, {}), 'charge on the new card');
      // Closed cards refuse everything: recharge, transfer into it, another replacement, binding by its number, points.
      expectFailed(await recharge(sys, old.id, { amount: '10.00' }), 'CARD_NOT_ACTIVE');
      expectFailed(await transfer(sys, { from_card_id: fresh.id, to_card_id: old.id, amount: '1.00' }), 'CARD_NOT_ACTIVE');
      expectFailed(await replaceCard(sys, old.id, 'other'), 'CARD_NOT_ACTIVE');
      const stranger = await memberToken(sys, (await createMember(sys)).id);
      expectError(await sys.http.post('/v1/cards/bind', { card_no: old.card_no, binding_password: DEFAULT_BINDING_PASSWORD }, { key: stranger }), 422, 'CARD_NOT_ACTIVE');
      expect((await sys.http.post('/v1/cards/bind', { card_no: fresh.card_no, binding_password: DEFAULT_BINDING_PASSWORD }, { key: stranger })).status).to.equal(201);
      expectError(await sys.http.post(`/v1/cards/${old.id}/points-adjustments`, { delta: 5, reason: 'x' }, { key: sys.adminKey }), 422, 'CARD_NOT_ACTIVE');
      await expectLedgersMatch(sys, old.id, { balance: 0, points: 0 });

      const events = await sys.deps.db('events').whereRaw(`data->>'operation_id' = ?`, [op.id]);
      expect(events.map((e) => [e.type, e.data.new_card_id])).to.deep.equal([['card_replacement.succeeded', fresh.id]]);
    });

    it('a frozen card is replaced by a frozen card; a standard card by a new standard card (one open standard card per member)', async () => {
      const owner = await createMember(sys);
      const frozen = await issueCard(sys, { type: 'corporate', ownerMemberId: owner.id, fixedDiscount: '0.880' });
      await rechargeOk(sys, frozen.id, '50.00');
      expect((await sys.http.post(`/v1/cards/${frozen.id}/freeze`, {}, { key: sys.adminKey })).status).to.equal(200);
      const op = expectSucceeded(await replaceCard(sys, frozen.id, 'damaged'));
      const next = await sys.http.get(`/v1/cards/${op.result!.new_card.id}`, { key: sys.adminKey });
      expect(next.body).to.include({ status: 'frozen', type: 'corporate', fixed_discount: '0.880', balance: '50.00' });

      const standard = owner.cards[0]!;
      const replaced = expectSucceeded(await replaceCard(sys, standard.id, 'lost'));
      expect(replaced.result!.new_card.card_no).to.match(/^8801\d{12}$/);
      const cards = await sys.deps.db('member_cards').where({ owner_member_id: owner.id, type: 'standard' }).orderBy('created_at');
      expect(cards.map((c) => c.status)).to.deep.equal(['closed', 'active']);
      // A second open standard card is still refused (checked at commit).
      let refused: unknown;
      await sys.deps.db.transaction((trx) => trx('member_cards').insert({ card_no: '8801000000000001', type: 'standard', owner_member_id: owner.id })).catch((err: unknown) => (refused = err));
      expect((refused as { constraint?: string })?.constraint).to.equal('member_cards_one_standard');
    });

    it('who may: the owner, an app, an admin; a bound member 403, another member 404, a merchant 403', async () => {
      const owner = await createMember(sys);
      const card = await issueCard(sys, { type: 'prepaid', ownerMemberId: owner.id });
      const bound = await createMember(sys);
      const boundToken = await memberToken(sys, bound.id);
      await bind(sys, { key: boundToken, cardNo: card.card_no });
      const other = await memberToken(sys, (await createMember(sys)).id);
      expectError(await replaceCard(sys, card.id, 'lost', { key: boundToken }), 403, 'FORBIDDEN');
      expectError(await replaceCard(sys, card.id, 'lost', { key: other }), 404, 'NOT_FOUND');
      expectError(await replaceCard(sys, card.id, 'lost', { key: merchantKey }), 403, 'FORBIDDEN');
      expectError(await replaceCard(sys, card.id, 'stolen'), 400, 'VALIDATION_ERROR');
      const byApp = expectSucceeded(await replaceCard(sys, card.id, 'damaged', { key: await createAppKey(sys) }), 'app replace');
      const byAdmin = expectSucceeded(await replaceCard(sys, byApp.result!.new_card.id, 'other'), 'admin replace');
      const third = await getCard(sys, byAdmin.result!.new_card.id);
      expect(third.status).to.equal('active');
    });
  });

  describe('close with payout', () => {
    it('an admin closes a card: its balance leaves as one payout with method and reference, the card is closed and refuses everything after', async () => {
      const owner = await createMember(sys);
      const card = await issueCard(sys, { type: 'prepaid', ownerMemberId: owner.id });
      await rechargeOk(sys, card.id, '300.00');
      const paid = await chargeOk(sys, merchantKey, card.id, '100.00');
      const qr = await issueQr(sys, card.id);

      const op = expectSucceeded(await closeCard(sys, card.id, { payout_method: 'bank_transfer', payout_reference: 'WIRE-2026-0001', reason: 'member moved abroad' }), 'close');
      expect(op.type).to.equal('card_close');
      expect(op.result).to.include({ payout_amount: '200.00' });
      expect(op.result!.tx_no).to.match(/^PYO\d{21}$/);
      const payout = await sys.deps.db('transactions').where({ operation_id: op.id }).first();
      expect(payout).to.include({ type: 'payout', card_id: card.id, final_amount_minor: 20_000, payment_method: 'bank_transfer', payment_reference: 'WIRE-2026-0001', reason: 'member moved abroad', merchant_id: null });
      const [row] = await sys.deps.db('balance_ledger').where({ transaction_id: payout.id });
      expect(row).to.include({ card_id: card.id, delta_minor: -20_000, balance_after_minor: 0, reason: 'payout' });
      expect(await getCard(sys, card.id)).to.include({ status: 'closed', balance: '0.00' });
      await expectLedgersMatch(sys, card.id, { balance: 0 });

      expectFailed(await charge(sys, merchantKey, { qr, amount: '1.00' }), 'QR_EXPIRED_OR_INVALID');
      expectFailed(await recharge(sys, card.id, { amount: '1.00' }), 'CARD_NOT_ACTIVE');
      expectFailed(await refund(sys, merchantKey, { original_tx_no: paid.result!.tx_no, amount: '10.00' }), 'CARD_NOT_ACTIVE');
      expectFailed(await closeCard(sys, card.id), 'CARD_NOT_ACTIVE');
      expectError(await sys.http.post(`/v1/cards/${card.id}/qr`, {}, { key: sys.adminKey }), 422, 'CARD_NOT_ACTIVE');
      // Every command on the card, not only money, says it is closed.
      for (const action of ['freeze', 'unfreeze']) expectError(await sys.http.post(`/v1/cards/${card.id}/${action}`, {}, { key: sys.adminKey }), 422, 'CARD_NOT_ACTIVE');
      expectError(await putLimits(sys, card.id, { daily_payment_count: 3 }), 422, 'CARD_NOT_ACTIVE');
      expectError(await putLimits(sys, card.id, { daily_payment_count: 3 }, await memberToken(sys, owner.id)), 422, 'CARD_NOT_ACTIVE');
      expectError(await sys.http.post(`/v1/cards/${card.id}/binding-password`, { password: 'Closed-card-1' }, { key: sys.adminKey }), 422, 'CARD_NOT_ACTIVE');
      expectError(await sys.http.patch(`/v1/cards/${card.id}/bindings/${owner.id}`, { role: 'viewer' }, { key: sys.adminKey }), 422, 'CARD_NOT_ACTIVE');
      expectError(await sys.http.delete(`/v1/cards/${card.id}/bindings/${owner.id}`, { key: sys.adminKey }), 422, 'CARD_NOT_ACTIVE');
      expectError(await sys.http.post(`/v1/cards/${card.id}/points-adjustments`, { delta: 5, reason: 'closed' }, { key: sys.adminKey }), 422, 'CARD_NOT_ACTIVE');
      expectFailed(await adjust(sys, card.id, '5.00'), 'CARD_NOT_ACTIVE');
      expect(await sys.deps.db('member_cards').where({ id: card.id }).first()).to.include({ daily_payment_count: null });
      await expectLedgersMatch(sys, card.id, { balance: 0 });
      const audit = await sys.deps.db('audit_events').where({ action: 'card_close.succeeded', object_id: card.id }).first();
      expect(audit.context).to.include({ payout_minor: 20_000, payout_method: 'bank_transfer', payout_reference: 'WIRE-2026-0001' });
    });

    it('an empty card closes with nothing to pay; one payout reference pays one payout; only admins close', async () => {
      const owner = await createMember(sys);
      const token = await memberToken(sys, owner.id);
      const [empty, a, b] = [await issueCard(sys, { type: 'prepaid', ownerMemberId: owner.id }), await issueCard(sys, { type: 'prepaid', ownerMemberId: owner.id }), await issueCard(sys, { type: 'prepaid', ownerMemberId: owner.id })];
      expectError(await closeCard(sys, empty.id, {}, { key: token }), 403, 'FORBIDDEN');
      expectError(await closeCard(sys, empty.id, {}, { key: await createAppKey(sys) }), 403, 'FORBIDDEN');
      expectError(await closeCard(sys, empty.id, { payout_reference: '' }), 400, 'VALIDATION_ERROR');
      const none = expectSucceeded(await closeCard(sys, empty.id));
      expect(none.result).to.include({ tx_no: null, payout_amount: '0.00' });
      expect(await sys.deps.db('transactions').where({ operation_id: none.id })).to.have.length(0);

      await rechargeOk(sys, a.id, '10.00');
      await rechargeOk(sys, b.id, '20.00');
      expectSucceeded(await closeCard(sys, a.id, { payout_method: 'cash', payout_reference: `R-${a.id}` }));
      const twice = expectFailed(await closeCard(sys, b.id, { payout_method: 'cash', payout_reference: `R-${a.id}` }), 'PAYMENT_REFERENCE_USED');
      expect(await sys.deps.db('transactions').where({ operation_id: twice.id })).to.have.length(0);
      expect(await getCard(sys, b.id)).to.include({ status: 'active', balance: '20.00' });
    });
  });

  // A describe of its own, so that it runs after the ones above.
  describe('ledgers', () => {
    it('verify-ledger proves balance = Σ balance_ledger and points = Σ point_ledger for every card of this database, replaced and closed ones included', async () => {
      const ledger = await runCli(['verify-ledger'], { DATABASE_URL: database.url });
      expect(ledger.code, ledger.out).to.equal(0);
      expect(ledger.out).to.match(/\d+ cards checked, 0 mismatched\./);
      expect(Number(/(\d+) cards checked/.exec(ledger.out)![1])).to.be.at.least(15);
    });
  });
});
