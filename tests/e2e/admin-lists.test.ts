import { randomBytes } from 'node:crypto';
import { expect } from 'chai';
import { generateSettlements } from '../../db/queries/settlements.js';
import { bind, createAppKey, createMember, createMerchant, issueCard, lastAudit, memberToken, type CardJson, type MemberJson } from '../helpers/fixtures.js';
import type { HttpResult } from '../helpers/http.js';
import { chargeOk, expectSucceeded, rechargeOk, refund } from '../helpers/money.js';
import { expectError } from '../helpers/request-checks.js';
import { insertOperation, insertTransaction } from '../helpers/sql-rows.js';
import { startSystem, type TestSystem } from '../helpers/system.js';

const TZ = 'Asia/Taipei';
const NO_SUCH_ID = '00000000-0000-4000-8000-000000000000';

describe('e2e: admin lists (merchants, cards, transactions, operations) and PATCH /v1/merchants/:id', function () {
  this.timeout(90_000);
  let sys: TestSystem;
  const prefix = `Lst${randomBytes(3).toString('hex')}`;
  let shopA: { id: string; key: string; code: string };
  let shopB: { id: string; key: string; code: string };
  let owner: MemberJson;
  let family: MemberJson;
  let prepaid: CardJson;
  let standard: CardJson;
  let keys: { app: string; member: string };
  let paymentA: string;
  let paymentB: string;
  let refundA: string;
  let mid: string;

  /** Walks a list page by page (`limit` each); fails on a repeat, a page out of order or too many pages. */
  async function walk(path: string, limit = 2, maxPages = 50): Promise<any[]> {
    const all: any[] = [];
    let cursor: string | null = null;
    for (let pages = 0; pages < maxPages; pages++) {
      const sep = path.includes('?') ? '&' : '?';
      const res: HttpResult = await sys.http.get(`${path}${sep}limit=${limit}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`, { key: sys.adminKey });
      expect(res.status, res.text).to.equal(200);
      expect(res.body.data.length).to.be.at.most(limit);
      all.push(...res.body.data);
      cursor = res.body.next_cursor;
      if (!cursor) return checked(all);
      expect(res.body.data).to.have.length(limit);
    }
    return checked(all);
  }
  function checked(rows: any[]) {
    const keyOf = (r: any) => r.id ?? r.tx_no;
    expect(new Set(rows.map(keyOf)).size, 'each row once').to.equal(rows.length);
    for (let i = 1; i < rows.length; i++) expect(Date.parse(rows[i - 1].created_at), 'newest first').to.be.at.least(Date.parse(rows[i].created_at));
    return rows;
  }
  const admin = () => ({ key: sys.adminKey });
  const localDay = async (offsetDays: number) =>
    (await sys.deps.db.raw<{ rows: { d: string }[] }>(`SELECT to_char((now() AT TIME ZONE ?)::date + ?::int, 'YYYY-MM-DD') AS d`, [TZ, offsetDays])).rows[0]!.d;
  /** Noon of a local day in Asia/Taipei (UTC+8), as an instant. */
  const noonOf = (day: string) => `${day}T04:00:00.000Z`;

  before(async () => {
    sys = await startSystem({ SETTLEMENT_TZ: TZ });
    const a = await createMerchant(sys, { code: `${prefix.toUpperCase()}A`, name: `${prefix} Coffee`, fee_rate: '0.0060' });
    const b = await createMerchant(sys, { code: `${prefix.toUpperCase()}B`, name: `${prefix} Books` });
    shopA = { id: a.merchant.id, key: a.key, code: a.merchant.code };
    shopB = { id: b.merchant.id, key: b.key, code: b.merchant.code };
    owner = await createMember(sys);
    family = await createMember(sys);
    const ownerToken = await memberToken(sys, owner.id);
    keys = { app: await createAppKey(sys), member: ownerToken };
    prepaid = await issueCard(sys, { type: 'prepaid', ownerMemberId: owner.id });
    standard = owner.cards[0]!;
    await bind(sys, { key: await memberToken(sys, family.id), cardNo: prepaid.card_no });

    await rechargeOk(sys, prepaid.id, '500.00');
    paymentA = (await chargeOk(sys, shopA.key, prepaid.id, '100.00', { qrKey: ownerToken })).result!.tx_no;
    await new Promise((r) => setTimeout(r, 5));
    mid = (await sys.deps.db.raw<{ rows: { now: Date }[] }>('SELECT now()')).rows[0]!.now.toISOString();
    await new Promise((r) => setTimeout(r, 5));
    paymentB = (await chargeOk(sys, shopB.key, standard.id, '50.00', { qrKey: ownerToken, payment_method: 'cash' })).result!.tx_no;
    refundA = expectSucceeded(await refund(sys, shopA.key, { original_tx_no: paymentA, amount: '30.00' })).result!.refund_tx_no;
  });
  after(async () => {
    await sys?.stop();
  });

  it('every admin route refuses merchant keys, app keys and member tokens with 403, and no key with 401', async () => {
    const routes: [string, string, unknown?][] = [
      ['GET', '/v1/merchants'],
      ['PATCH', `/v1/merchants/${shopA.id}`, { name: 'Mine now' }],
      ['GET', '/v1/cards'],
      ['GET', '/v1/transactions'],
      ['GET', `/v1/transactions?merchant_id=${shopB.id}`],
      ['GET', '/v1/operations'],
    ];
    for (const [method, path, body] of routes) {
      for (const key of [shopA.key, keys.app, keys.member]) expectError(await sys.http.request(method, path, body, { key }), 403, 'FORBIDDEN');
      expectError(await sys.http.request(method, path, body), 401, 'UNAUTHENTICATED');
    }
    expect((await sys.http.get(`/v1/merchants/${shopA.id}`, admin())).body.name).to.equal(`${prefix} Coffee`);
  });

  describe('GET /v1/merchants', () => {
    it('lists merchants newest first; q finds a code prefix or a part of the name, in any case; status narrows', async () => {
      const found = await walk(`/v1/merchants?q=${prefix.toLowerCase()}`, 1);
      expect(found.map((m) => m.id)).to.deep.equal([shopB.id, shopA.id]);
      expect(found[1]).to.include({ code: shopA.code, name: `${prefix} Coffee`, fee_rate: '0.0060', fee_rate_from: null, previous_fee_rate: null, status: 'active' });
      expect((await walk(`/v1/merchants?q=${shopA.code.toLowerCase()}`)).map((m) => m.id)).to.deep.equal([shopA.id]);
      expect((await walk(`/v1/merchants?q=${encodeURIComponent(`${prefix} BOO`)}`)).map((m) => m.id)).to.deep.equal([shopB.id]);
      expect(await walk(`/v1/merchants?q=${encodeURIComponent('%')}`)).to.deep.equal([]);

      const c = await createMerchant(sys, { code: `${prefix.toUpperCase()}C`, name: `${prefix} Closed` });
      expect((await sys.http.post(`/v1/merchants/${c.merchant.id}/suspend`, {}, admin())).status).to.equal(200);
      expect((await walk(`/v1/merchants?q=${prefix}&status=suspended`)).map((m) => m.id)).to.deep.equal([c.merchant.id]);
      expect((await walk(`/v1/merchants?q=${prefix}&status=active`)).map((m) => m.id)).to.deep.equal([shopB.id, shopA.id]);
      const all = await sys.http.get('/v1/merchants?limit=200', admin());
      expect(all.body.data.length).to.be.at.least(3);
    });

    it('refuses bad query values with 400', async () => {
      for (const query of ['status=closed', 'limit=0', 'limit=201', 'limit=x', 'q=', 'cursor=abc', 'fee_rate=0.1']) expectError(await sys.http.get(`/v1/merchants?${query}`, admin()), 400, 'VALIDATION_ERROR');
    });
  });

  describe('PATCH /v1/merchants/:id', () => {
    it('renames a merchant; the audit event has before and after; the same name again writes nothing', async () => {
      const m = await createMerchant(sys, { name: 'Old Name' });
      const res = await sys.http.patch(`/v1/merchants/${m.merchant.id}`, { name: 'New Name' }, admin());
      expect(res.status, res.text).to.equal(200);
      expect(res.body).to.include({ id: m.merchant.id, name: 'New Name', fee_rate: m.merchant.fee_rate, fee_rate_from: null });
      expect((await sys.http.get(`/v1/merchants/${m.merchant.id}`, admin())).body.name).to.equal('New Name');
      const audit = await lastAudit(sys, 'merchant', m.merchant.id);
      expect(audit).to.include({ action: 'merchant.update', role: 'admin' });
      expect(audit.context).to.deep.equal({ before: { name: 'Old Name' }, after: { name: 'New Name' } });
      expect((await sys.http.patch(`/v1/merchants/${m.merchant.id}`, { name: 'New Name' }, admin())).status).to.equal(200);
      expect((await lastAudit(sys, 'merchant', m.merchant.id)).id).to.equal(audit.id);
    });

    it('refuses bad bodies with 400, unknown merchants with 404, and changes nothing', async () => {
      const m = await createMerchant(sys, { fee_rate: '0.0060' });
      for (const body of [{}, { fee_rate: '1.5' }, { fee_rate: '0.00001' }, { fee_rate: -0.01 }, { name: '' }, { status: 'suspended' }, { code: 'NEWCODE' }, { name: 'x', settlement_mode: 't_plus_1' }]) {
        expectError(await sys.http.patch(`/v1/merchants/${m.merchant.id}`, body, admin()), 400, 'VALIDATION_ERROR');
      }
      expect((await sys.http.get(`/v1/merchants/${m.merchant.id}`, admin())).body).to.deep.equal(m.merchant);
      expectError(await sys.http.patch(`/v1/merchants/${NO_SUCH_ID}`, { name: 'Nobody' }, admin()), 404, 'NOT_FOUND');
      expectError(await sys.http.patch('/v1/merchants/nope', { name: 'Nobody' }, admin()), 404, 'NOT_FOUND');
    });

    it('a new fee rate applies from the next settlement day: days before it, today included, settle at the old rate', async () => {
      const m = await createMerchant(sys, { fee_rate: '0.0060' });
      const payer = await createMember(sys);
      const [yesterday, today, tomorrow] = [await localDay(-1), await localDay(0), await localDay(1)];
      for (const day of [yesterday, today, tomorrow]) {
        await insertTransaction(sys.deps.db, { type: 'payment', merchantId: m.merchant.id, cardId: payer.cards[0]!.id, memberId: payer.id, finalMinor: 1_000_000, createdAt: noonOf(day) });
      }
      const res = await sys.http.patch(`/v1/merchants/${m.merchant.id}`, { fee_rate: '0.01' }, admin());
      expect(res.status, res.text).to.equal(200);
      expect(res.body).to.include({ fee_rate: '0.0100', fee_rate_from: tomorrow, previous_fee_rate: '0.0060' });
      expect((await lastAudit(sys, 'merchant', m.merchant.id)).context).to.deep.equal({
        before: { fee_rate: '0.0060', fee_rate_from: null },
        after: { fee_rate: '0.0100', fee_rate_from: tomorrow },
      });
      // A second change the same day replaces the first; the rate until tomorrow is still the original one.
      const again = await sys.http.patch(`/v1/merchants/${m.merchant.id}`, { fee_rate: 0.02 }, admin());
      expect(again.body).to.include({ fee_rate: '0.0200', fee_rate_from: tomorrow, previous_fee_rate: '0.0060' });
      expect((await sys.http.get(`/v1/merchants/${m.merchant.id}`, admin())).body).to.deep.equal(again.body);

      // Yesterday through the API (its day is over); today and tomorrow straight in SQL (they have not ended).
      const run = await sys.http.post('/v1/settlements/run', { date: yesterday, merchant_id: m.merchant.id }, admin());
      expect(run.status, run.text).to.equal(201);
      expect(run.body.data[0]).to.include({ gross_amount: '10000.00', fee_amount: '60.00', net_amount: '9940.00' });
      try {
        const [onToday] = await generateSettlements(sys.deps.db, today, TZ, m.merchant.id);
        const [onTomorrow] = await generateSettlements(sys.deps.db, tomorrow, TZ, m.merchant.id);
        expect(onToday).to.include({ gross_minor: 1_000_000, fee_minor: 6_000 });
        expect(onTomorrow).to.include({ gross_minor: 1_000_000, fee_minor: 20_000, net_minor: 980_000 });
      } finally {
        // Other tests read the newest transactions and today's settlements: leave no row of the future behind.
        const db = sys.deps.db;
        await db('settlements').where({ merchant_id: m.merchant.id }).whereIn('period_date', [today, tomorrow]).del();
        const future = db('transactions').where({ merchant_id: m.merchant.id }).where('created_at', '>', db.fn.now());
        const ops = await future.clone().pluck('operation_id');
        await future.del();
        await db('operations').whereIn('id', ops).del();
      }
    });

    it('a day settled late gets the rate in force on it, through several changes', async () => {
      const m = await createMerchant(sys, { fee_rate: '0.0050' });
      const payer = await createMember(sys);
      const days = await Promise.all([-4, -3, -2, -1].map(localDay));
      for (const day of days) await insertTransaction(sys.deps.db, { type: 'payment', merchantId: m.merchant.id, cardId: payer.cards[0]!.id, memberId: payer.id, finalMinor: 1_000_000, createdAt: noonOf(day) });
      expect((await sys.http.patch(`/v1/merchants/${m.merchant.id}`, { fee_rate: '0.0300' }, admin())).status).to.equal(200);
      // As if the rate had been changed to 0.0100 three days ago and to 0.0200 the day after (moved back in time).
      await sys.deps.db('merchant_fee_rates').insert([
        { merchant_id: m.merchant.id, effective_from: days[1], fee_rate: '0.0100' },
        { merchant_id: m.merchant.id, effective_from: days[2], fee_rate: '0.0200' },
      ]);
      const fees: number[] = [];
      for (const day of days) {
        const res = await sys.http.post('/v1/settlements/run', { date: day, merchant_id: m.merchant.id }, admin());
        expect(res.status, res.text).to.equal(201);
        fees.push(Number(res.body.data[0].fee_amount));
      }
      expect(fees).to.deep.equal([50, 100, 200, 200]);
    });
  });

  describe('GET /v1/cards', () => {
    it('member_id: every card the member holds, with its role on each; type and status narrow', async () => {
      const ownerCards = await walk(`/v1/cards?member_id=${owner.id}`, 1);
      expect(ownerCards.map((c) => [c.id, c.role])).to.deep.equal([
        [prepaid.id, 'owner'],
        [standard.id, 'owner'],
      ]);
      expect(ownerCards[0]).to.include({ card_no: prepaid.card_no, type: 'prepaid', owner_member_id: owner.id, balance: '430.00', discount_rate: '1.000' });
      const familyCards = await walk(`/v1/cards?member_id=${family.id}`);
      expect(familyCards.map((c) => [c.id, c.role])).to.deep.equal([
        [prepaid.id, 'member'],
        [family.cards[0]!.id, 'owner'],
      ]);
      expect((await walk(`/v1/cards?member_id=${family.id}&type=standard`)).map((c) => c.id)).to.deep.equal([family.cards[0]!.id]);
      expect(await walk(`/v1/cards?member_id=${NO_SUCH_ID}`)).to.deep.equal([]);
      // Any UUID is an id (rows made by SQL, such as the bench's, need not carry an RFC 4122 version).
      expect(await walk('/v1/cards?member_id=5d41402a-bc4b-2a76-b971-9d911017c592')).to.deep.equal([]);
      expect(await walk('/v1/transactions?card_id=5d41402a-bc4b-2a76-b971-9d911017c592&merchant_id=5D41402A-BC4B-2A76-B971-9D911017C592')).to.deep.equal([]);
    });

    it('by status and type across members, newest first', async () => {
      const voucherOwner = await createMember(sys);
      const voucher = await issueCard(sys, { type: 'voucher', ownerMemberId: voucherOwner.id, faceValue: '10.00' });
      expect((await sys.http.post(`/v1/cards/${voucher.id}/freeze`, {}, admin())).status).to.equal(200);
      const frozen = await walk('/v1/cards?status=frozen', 50, 4);
      expect(frozen.map((c) => c.id)).to.include(voucher.id);
      expect(frozen.every((c) => c.status === 'frozen')).to.equal(true);
      const vouchers = await walk('/v1/cards?type=voucher&status=frozen', 50, 4);
      expect(vouchers[0]).to.include({ id: voucher.id, type: 'voucher', status: 'frozen', face_value: '10.00' });
      expect(vouchers.every((c) => c.type === 'voucher')).to.equal(true);
      const newest = await sys.http.get('/v1/cards?limit=1', admin());
      expect(newest.body.data.map((c: { id: string }) => c.id)).to.deep.equal([voucher.id]);
      expect(newest.body.data[0].role).to.equal(undefined);
    });

    it('refuses bad query values with 400', async () => {
      for (const query of ['type=gold', 'status=lost', 'member_id=me', 'limit=500', 'owner=x']) expectError(await sys.http.get(`/v1/cards?${query}`, admin()), 400, 'VALIDATION_ERROR');
    });
  });

  describe('GET /v1/transactions', () => {
    it('across merchants, narrowed by merchant, card, member, type, status, time and number', async () => {
      const ofA = await walk(`/v1/transactions?merchant_id=${shopA.id}`);
      expect(ofA.map((t) => t.tx_no)).to.deep.equal([refundA, paymentA]);
      expect(ofA[0]).to.include({ type: 'refund', original_tx_no: paymentA, merchant_id: shopA.id, card_id: prepaid.id, card_no: prepaid.card_no, member_id: owner.id, final_amount: '30.00' });
      expect(ofA[1]).to.include({ type: 'payment', status: 'partially_refunded', refunded_amount: '30.00' });
      expect((await walk(`/v1/transactions?merchant_id=${shopB.id}`)).map((t) => t.tx_no)).to.deep.equal([paymentB]);
      const ofCard = await walk(`/v1/transactions?card_id=${prepaid.id}`);
      expect(ofCard.map((t) => [t.type, t.final_amount])).to.deep.equal([
        ['refund', '30.00'],
        ['payment', '100.00'],
        ['recharge', '500.00'],
      ]);
      expect((await walk(`/v1/transactions?member_id=${owner.id}&card_id=${standard.id}`)).map((t) => t.tx_no)).to.deep.equal([paymentB]);
      expect((await walk(`/v1/transactions?member_id=${owner.id}&type=payment`)).map((t) => t.tx_no)).to.deep.equal([paymentB, paymentA]);
      expect((await walk(`/v1/transactions?merchant_id=${shopA.id}&status=partially_refunded`)).map((t) => t.tx_no)).to.deep.equal([paymentA]);
      expect((await walk(`/v1/transactions?card_id=${prepaid.id}&from=${encodeURIComponent(mid)}`)).map((t) => t.tx_no)).to.deep.equal([refundA]);
      expect((await walk(`/v1/transactions?member_id=${owner.id}&to=${encodeURIComponent(mid)}`)).map((t) => t.type)).to.deep.equal(['payment', 'recharge']);
      for (const no of [paymentB, paymentB.toLowerCase()]) expect((await walk(`/v1/transactions?tx_no=${no}`)).map((t) => t.merchant_id)).to.deep.equal([shopB.id]);
      expect(await walk(`/v1/transactions?tx_no=${paymentB}&merchant_id=${shopA.id}`)).to.deep.equal([]);
    });

    it('every transaction and every refund newest first, pages without repeats', async () => {
      const refunds = await walk('/v1/transactions?type=refund', 50, 4);
      expect(refunds.every((t) => t.type === 'refund')).to.equal(true);
      expect(refunds.map((t) => t.tx_no)).to.include(refundA);
      const newest = await walk('/v1/transactions', 2, 3);
      const want = await sys.deps.db('transactions').orderBy([{ column: 'created_at', order: 'desc' }, { column: 'id', order: 'desc' }]).limit(newest.length).pluck('tx_no');
      expect(newest.map((t) => t.tx_no)).to.deep.equal(want);
    });

    it('refuses bad query values with 400', async () => {
      for (const query of ['type=adjust', 'status=done', 'merchant_id=abc', 'from=yesterday', 'to=2026-02-30T00:00:00Z', `from=${encodeURIComponent(mid)}&to=${encodeURIComponent(mid)}`, 'tx_no=PAY-1', 'amount=1']) {
        expectError(await sys.http.get(`/v1/transactions?${query}`, admin()), 400, 'VALIDATION_ERROR');
      }
    });
  });

  describe('GET /v1/operations', () => {
    it('the on-call view: what is still queued or processing after older_than_s, by type; newest first', async () => {
      const stuck = await insertOperation(sys.deps.db, { type: 'refund', status: 'queued', merchantId: shopA.id, createdAtSql: `now() - interval '10 minutes'` });
      const processing = await insertOperation(sys.deps.db, { type: 'payment', status: 'processing', merchantId: shopA.id, createdAtSql: `now() - interval '20 minutes'` });
      const fresh = await insertOperation(sys.deps.db, { type: 'refund', status: 'queued', merchantId: shopA.id });
      const failed = await insertOperation(sys.deps.db, { type: 'recharge', status: 'failed', createdAtSql: `now() - interval '30 minutes'` });
      try {
        const queued = await walk('/v1/operations?status=queued&older_than_s=300', 50, 4);
        expect(queued.map((o) => o.id)).to.include(stuck).and.not.include(fresh);
        expect(queued.every((o) => o.status === 'queued' && Date.parse(o.created_at) < Date.now() - 290_000)).to.equal(true);
        const row = queued.find((o) => o.id === stuck);
        expect(row).to.include({ type: 'refund', status: 'queued', completed_at: null, error: null, merchant_id: shopA.id, amount: '10.00', attempts: 0 });
        expect(row).to.have.all.keys('id', 'type', 'status', 'created_at', 'completed_at', 'error', 'result', 'merchant_id', 'member_id', 'card_id', 'partition', 'amount', 'payment_method', 'original_tx_no', 'actor_role', 'attempts', 'enqueue_count', 'started_at');
        expect((await walk('/v1/operations?status=queued&type=payment&older_than_s=300', 50, 4)).map((o) => o.id)).to.not.include(stuck);
        expect((await walk('/v1/operations?status=processing&older_than_s=900', 50, 4)).map((o) => o.id)).to.include(processing);
        const failures = await walk('/v1/operations?status=failed&type=recharge', 50, 4);
        expect(failures.map((o) => o.id)).to.include(failed);
        expect(failures.find((o) => o.id === failed).error).to.deep.equal({ code: 'INSUFFICIENT_BALANCE', message: 'test' });
        // The charges made above, with what they gave.
        const payments = await walk(`/v1/operations?type=payment&status=succeeded`, 50, 2);
        expect(payments.map((o) => o.result?.tx_no)).to.include.members([paymentA, paymentB]);
      } finally {
        // Other test files' reconcilers and doctors look at open operations: leave none behind.
        await sys.deps.db('operations').whereIn('id', [stuck, processing, fresh]).update({ status: 'failed', error_code: 'INTERNAL_ERROR', error_message: 'test', completed_at: sys.deps.db.fn.now() });
      }
    });

    it('every type merged newest first, a page at a time, also through operations of one instant', async () => {
      // Three types at one instant, long ago, so that only they are older than older_than_s.
      const at = '2000-01-01T00:00:00.000Z';
      const made = [];
      for (const type of ['payment', 'refund', 'recharge', 'payment'] as const) made.push(await insertOperation(sys.deps.db, { type, status: 'failed', createdAt: at }));
      const older = Math.floor((Date.now() - Date.parse('2000-06-01T00:00:00Z')) / 1000);
      const listed = await walk(`/v1/operations?older_than_s=${older}`, 1);
      expect(listed.map((o) => o.id)).to.deep.equal([...made].sort().reverse());
      expect((await walk(`/v1/operations?older_than_s=${older}&type=payment`, 1)).map((o) => o.id)).to.have.members([made[0], made[3]]);
      const newest = await sys.http.get('/v1/operations?limit=3', admin());
      const want = await sys.deps.db('operations').orderBy([{ column: 'created_at', order: 'desc' }, { column: 'id', order: 'desc' }]).limit(3).pluck('id');
      expect(newest.body.data.map((o: { id: string }) => o.id)).to.deep.equal(want);
    });

    it('refuses bad query values with 400', async () => {
      const forged = Buffer.from(JSON.stringify({ t: new Date().toISOString(), id: "op_x' OR 1=1" })).toString('base64url');
      for (const query of ['status=stuck', 'type=teleport', 'older_than_s=-1', 'older_than_s=1e3', 'older_than_s=', 'older_than_s=ten', `cursor=${forged}`, 'merchant_id=x']) {
        expectError(await sys.http.get(`/v1/operations?${query}`, admin()), 400, 'VALIDATION_ERROR');
      }
    });
  });
});
