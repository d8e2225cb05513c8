import { expect } from 'chai';
import { bind, createMember, createMerchant, issueCard, memberToken, type CardJson, type MemberJson } from '../helpers/fixtures.js';
import { charge, chargeOk, expectError, expectFailed, expectSucceeded, issueQr, rechargeOk, refund } from '../helpers/money.js';
import type { HttpResult } from '../helpers/http.js';
import { startSystem, type TestSystem } from '../helpers/system.js';

interface TxJson {
  tx_no: string;
  type: string;
  status: string;
  card_id?: string;
  card_no?: string;
  member_id?: string | null;
  merchant_id: string | null;
  original_tx_no: string | null;
  raw_amount: string;
  final_amount: string;
  created_at: string;
}

describe('e2e: transaction lists', function () {
  this.timeout(60_000);
  let sys: TestSystem;
  let merchantA: { key: string; id: string };
  let merchantB: { key: string; id: string };
  let owner: MemberJson;
  let ownerToken: string;
  let family: MemberJson;
  let familyToken: string;
  let prepaid: CardJson;
  let standard: CardJson;
  let mid: string;

  /** Walks a list with `limit` per page; fails on a repeated row or too many pages. */
  async function walk(path: string, key: string, limit = 2): Promise<TxJson[]> {
    const all: TxJson[] = [];
    let cursor: string | null = null;
    for (let pages = 0; ; pages++) {
      expect(pages, 'too many pages').to.be.below(100);
      const sep = path.includes('?') ? '&' : '?';
      const res: HttpResult = await sys.http.get(`${path}${sep}limit=${limit}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`, { key });
      expect(res.status, res.text).to.equal(200);
      expect(res.body.data.length).to.be.at.most(limit);
      all.push(...(res.body.data as TxJson[]));
      cursor = res.body.next_cursor;
      if (!cursor) break;
      expect(res.body.data).to.have.length(limit);
    }
    const nos = all.map((t) => t.tx_no);
    expect(new Set(nos).size, `duplicates in ${nos.join(',')}`).to.equal(nos.length);
    // Newest first.
    for (let i = 1; i < all.length; i++) expect(Date.parse(all[i - 1]!.created_at)).to.be.at.least(Date.parse(all[i]!.created_at));
    return all;
  }

  /** tx_no of rows matching the SQL where, newest first. */
  async function expectedNos(where: (q: any) => void): Promise<string[]> {
    const q = sys.deps.db('transactions').select('tx_no').orderBy([
      { column: 'created_at', order: 'desc' },
      { column: 'id', order: 'desc' },
    ]);
    where(q);
    return (await q).map((r: { tx_no: string }) => r.tx_no);
  }

  before(async () => {
    sys = await startSystem();
    const a = await createMerchant(sys);
    const b = await createMerchant(sys);
    merchantA = { key: a.key, id: a.merchant.id };
    merchantB = { key: b.key, id: b.merchant.id };
    owner = await createMember(sys);
    ownerToken = await memberToken(sys, owner.id);
    family = await createMember(sys);
    familyToken = await memberToken(sys, family.id);
    prepaid = await issueCard(sys, { type: 'prepaid', ownerMemberId: owner.id });
    standard = owner.cards[0]!;
    await bind(sys, { key: familyToken, cardNo: prepaid.card_no });

    await rechargeOk(sys, prepaid.id, '1000.00');
    const p1 = await chargeOk(sys, merchantA.key, prepaid.id, '10.00', { qrKey: ownerToken });
    await chargeOk(sys, merchantA.key, standard.id, '20.00', { qrKey: ownerToken, payment_method: 'cash' });
    await chargeOk(sys, merchantB.key, prepaid.id, '30.00', { qrKey: ownerToken });
    // The boundary for from/to, on the database clock.
    await new Promise((r) => setTimeout(r, 5));
    mid = (await sys.deps.db.raw<{ rows: { now: Date }[] }>('SELECT now()')).rows[0]!.now.toISOString();
    await new Promise((r) => setTimeout(r, 5));
    await chargeOk(sys, merchantA.key, prepaid.id, '40.00', { qrKey: familyToken });
    expectSucceeded(await refund(sys, merchantA.key, { original_tx_no: p1.result!.tx_no, amount: '5.00' }));
    await chargeOk(sys, merchantA.key, standard.id, '60.00', { qrKey: ownerToken, payment_method: 'credit_card' });
    await rechargeOk(sys, prepaid.id, '70.00');
    // A failed charge writes no transaction and so is in no list.
    const qr = await issueQr(sys, prepaid.id, ownerToken);
    expectFailed(await charge(sys, merchantA.key, { qr, amount: '999999.00' }), 'INSUFFICIENT_BALANCE');
  });
  after(async () => {
    await sys.stop();
  });

  it('member list: all its transactions across cards, limit=2 walks every page once', async () => {
    const got = await walk(`/v1/members/${owner.id}/transactions`, ownerToken);
    const want = await expectedNos((q) => q.where({ member_id: owner.id }));
    expect(got.map((t) => t.tx_no)).to.deep.equal(want);
    // recharge 1000, 10 (A), 20 std (A), 30 (B), refund 5 (A, of the owner's payment), 60 std (A),
    // recharge 70 (an admin's recharges count for the card's owner)
    expect(got.map((t) => [t.type, t.final_amount]).reverse()).to.deep.equal([
      ['recharge', '1000.00'],
      ['payment', '10.00'],
      ['payment', '20.00'],
      ['payment', '30.00'],
      ['refund', '5.00'],
      ['payment', '60.00'],
      ['recharge', '70.00'],
    ]);
    for (const t of got) {
      expect(t.member_id).to.equal(owner.id);
      expect(t.card_no).to.be.oneOf([prepaid.card_no, standard.card_no]);
    }
    const refundRow = got.find((t) => t.type === 'refund')!;
    expect(refundRow.original_tx_no).to.match(/^PAY/);
    // The same via admin and, for another member, 404.
    expect((await walk(`/v1/members/${owner.id}/transactions`, sys.adminKey, 3)).map((t) => t.tx_no)).to.deep.equal(want);
    expectError(await sys.http.get(`/v1/members/${owner.id}/transactions`, { key: familyToken }), 404, 'NOT_FOUND');
    expectError(await sys.http.get(`/v1/members/${owner.id}/transactions`, { key: merchantA.key }), 403, 'FORBIDDEN');
  });

  it('card list: every transaction of the card, whoever paid; a bound member may read it', async () => {
    const want = await expectedNos((q) => q.where({ card_id: prepaid.id }));
    expect(want).to.have.length(6);
    const got = await walk(`/v1/cards/${prepaid.id}/transactions`, familyToken);
    expect(got.map((t) => t.tx_no)).to.deep.equal(want);
    expect(got.map((t) => t.type).sort()).to.deep.equal(['payment', 'payment', 'payment', 'recharge', 'recharge', 'refund']);
    expect(got.filter((t) => t.member_id === family.id).map((t) => [t.type, t.final_amount])).to.deep.equal([['payment', '40.00']]);
    const outsider = await memberToken(sys, (await createMember(sys)).id);
    expectError(await sys.http.get(`/v1/cards/${prepaid.id}/transactions`, { key: outsider }), 404, 'NOT_FOUND');
  });

  it('merchant list: only its own payments and refunds, card_no masked, no member_id or card_id', async () => {
    const got = await walk('/v1/merchant/transactions', merchantA.key);
    const want = await expectedNos((q) => q.where({ merchant_id: merchantA.id }));
    expect(got.map((t) => t.tx_no)).to.deep.equal(want);
    expect(got.map((t) => [t.type, t.final_amount]).reverse()).to.deep.equal([
      ['payment', '10.00'],
      ['payment', '20.00'],
      ['payment', '40.00'],
      ['refund', '5.00'],
      ['payment', '60.00'],
    ]);
    for (const t of got) {
      expect(t).to.not.have.property('member_id');
      expect(t).to.not.have.property('card_id');
      expect(t.card_no).to.match(/^880\d\*{8}\d{4}$/);
      expect([prepaid.card_no, standard.card_no].map((n) => `${n.slice(0, 4)}********${n.slice(-4)}`)).to.include(t.card_no);
      expect(t.merchant_id).to.equal(merchantA.id);
    }
    const b = await walk('/v1/merchant/transactions', merchantB.key);
    expect(b.map((t) => t.final_amount)).to.deep.equal(['30.00']);
    const status = await walk('/v1/merchant/transactions?status=partially_refunded', merchantA.key);
    expect(status.map((t) => [t.type, t.final_amount])).to.deep.equal([['payment', '10.00']]);
  });

  it('filters: type, from and to (from inclusive, to exclusive), also combined with pagination', async () => {
    const payments = await walk(`/v1/members/${owner.id}/transactions?type=payment`, ownerToken);
    expect(payments.map((t) => t.final_amount).reverse()).to.deep.equal(['10.00', '20.00', '30.00', '60.00']);
    const refunds = await walk(`/v1/cards/${prepaid.id}/transactions?type=refund`, ownerToken);
    expect(refunds.map((t) => t.final_amount)).to.deep.equal(['5.00']);
    const recharges = await walk(`/v1/cards/${prepaid.id}/transactions?type=recharge`, sys.adminKey, 1);
    expect(recharges.map((t) => t.final_amount)).to.deep.equal(['70.00', '1000.00']);

    const after = await walk(`/v1/cards/${prepaid.id}/transactions?from=${encodeURIComponent(mid)}`, ownerToken);
    expect(after.map((t) => [t.type, t.final_amount]).reverse()).to.deep.equal([
      ['payment', '40.00'],
      ['refund', '5.00'],
      ['recharge', '70.00'],
    ]);
    const before = await walk(`/v1/cards/${prepaid.id}/transactions?to=${encodeURIComponent(mid)}`, ownerToken);
    expect(before.map((t) => [t.type, t.final_amount]).reverse()).to.deep.equal([
      ['recharge', '1000.00'],
      ['payment', '10.00'],
      ['payment', '30.00'],
    ]);
    const merchantAfter = await walk(`/v1/merchant/transactions?type=payment&from=${encodeURIComponent(mid)}`, merchantA.key, 1);
    expect(merchantAfter.map((t) => t.final_amount)).to.deep.equal(['60.00', '40.00']);
    const none = await walk(`/v1/members/${owner.id}/transactions?from=${encodeURIComponent(new Date(Date.now() + 3_600_000).toISOString())}`, ownerToken);
    expect(none).to.deep.equal([]);
  });

  it('bad list parameters are 400 VALIDATION_ERROR', async () => {
    for (const q of ['limit=0', 'limit=201', 'type=bogus', 'from=yesterday', 'cursor=not-a-cursor', 'unknown=1']) {
      expectError(await sys.http.get(`/v1/cards/${prepaid.id}/transactions?${q}`, { key: ownerToken }), 400, 'VALIDATION_ERROR');
    }
  });

  it('pagination neither skips nor repeats rows created within the same millisecond', async () => {
    // Under load, two transactions of one merchant often commit within one millisecond; Postgres
    // keeps microseconds. Set four rows of a fresh card to the same millisecond, microseconds apart.
    const m = await createMember(sys);
    const card = await issueCard(sys, { type: 'prepaid', ownerMemberId: m.id });
    for (const amount of ['1.00', '2.00', '3.00', '4.00', '5.00']) await rechargeOk(sys, card.id, amount);
    const rows = await sys.deps.db('transactions').where({ card_id: card.id }).orderBy('created_at');
    const stamps = ['2026-03-01T10:00:00.100000Z', '2026-03-01T10:00:00.123100Z', '2026-03-01T10:00:00.123200Z', '2026-03-01T10:00:00.123300Z', '2026-03-01T10:00:00.123400Z'];
    for (let i = 0; i < rows.length; i++) await sys.deps.db('transactions').where({ id: rows[i].id }).update({ created_at: stamps[i] });

    const want = await expectedNos((q) => q.where({ card_id: card.id }));
    expect(want).to.have.length(5);
    for (const limit of [1, 2, 3]) {
      const got = await walk(`/v1/cards/${card.id}/transactions`, sys.adminKey, limit);
      expect(got.map((t) => t.tx_no), `limit=${limit}`).to.deep.equal(want);
    }
  });
});
