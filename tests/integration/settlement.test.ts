import { expect } from 'chai';
import { createMember, createMerchant } from '../helpers/fixtures.js';
import { insertTransaction } from '../helpers/sql-rows.js';
import { startSystem, type TestSystem } from '../helpers/system.js';
import { runSettlement, settleDay } from '../../jobs/settlement.js';
import { generateSettlements } from '../../db/queries/settlements.js';

/**
 * T+1 settlement (DESIGN.md "Settlement") on a fixed data set in Asia/Taipei (UTC+8): the local day
 * 2026-11-20 is [2026-11-19T16:00Z, 2026-11-20T16:00Z). Rows are inserted with SQL at chosen
 * instants; every figure below is worked out by hand in the comments.
 */
describe('integration: T+1 settlement', function () {
  this.timeout(60_000);
  let sys: TestSystem;
  let a: { id: string; key: string };
  let b: { id: string; key: string };
  let card: { id: string; memberId: string };
  const ids: Record<string, string> = {};

  const pay = (merchantId: string, finalMinor: number, at: string, extra: { rawMinor?: number; discountRate?: string } = {}) =>
    insertTransaction(sys.deps.db, { type: 'payment', merchantId, cardId: card.id, memberId: card.memberId, finalMinor, createdAt: at, ...extra });
  const refundOf = (merchantId: string, originalTxId: string, amountMinor: number, at: string) =>
    insertTransaction(sys.deps.db, { type: 'refund', merchantId, cardId: card.id, memberId: card.memberId, finalMinor: amountMinor, originalTxId, createdAt: at });
  const run = (body: Record<string, unknown>) => sys.http.post('/v1/settlements/run', body, { key: sys.adminKey });
  const settlementsOf = (merchantId: string) => sys.deps.db('settlements').where({ merchant_id: merchantId }).orderBy('period_date');

  before(async () => {
    sys = await startSystem({ SETTLEMENT_TZ: 'Asia/Taipei' }, { workers: false });
    const ma = await createMerchant(sys, { fee_rate: '0.0060' });
    const mb = await createMerchant(sys);
    expect(ma.merchant.fee_rate).to.equal('0.0060');
    a = { id: ma.merchant.id, key: ma.key };
    b = { id: mb.merchant.id, key: mb.key };
    const member = await createMember(sys);
    card = { id: member.cards[0]!.id, memberId: member.id };

    // Merchant A, local day 2026-11-19: the last millisecond before the 20th begins (excluded from the 20th).
    await pay(a.id, 7_000, '2026-11-19T15:59:59.999Z');
    // Local day 2026-11-20: 00:00:00 local (first instant) and 23:59:59 local (last second).
    const pA1 = await pay(a.id, 234_567, '2026-11-19T16:00:00.000Z', { rawMinor: 246_913, discountRate: '0.950' });
    const pA2 = await pay(a.id, 1_000_000, '2026-11-20T15:59:59.000Z');
    await refundOf(a.id, pA1.id, 34_567, '2026-11-20T10:00:00.000Z'); // partial
    await refundOf(a.id, pA2.id, 100_000, '2026-11-20T15:00:00.000Z'); // partial
    // Local day 2026-11-21: 00:00:00 local, and a refund of a payment made on the 20th.
    await pay(a.id, 2_000_000, '2026-11-20T16:00:00.000Z');
    await pay(a.id, 750, '2026-11-21T12:00:00.000Z');
    await refundOf(a.id, pA2.id, 50_000, '2026-11-21T01:00:00.000Z');
    // Local day 2026-11-22 (excluded from the 21st).
    await pay(a.id, 9_999, '2026-11-21T16:00:00.000Z');

    // Merchant B (fee 0): a payment on the 20th, partly refunded on the 21st (a refunds-only day).
    const pB = await pay(b.id, 30_000, '2026-11-20T05:00:00.000Z');
    await refundOf(b.id, pB.id, 3_000, '2026-11-21T05:00:00.000Z');
  });
  after(async () => {
    await sys.stop();
  });

  it('settles local day 2026-11-20 for one merchant: boundaries, finals not raws, partial refunds, fee 74.07 (round of 7407.402)', async () => {
    const res = await run({ date: '2026-11-20', merchant_id: a.id });
    expect(res.status, JSON.stringify(res.body)).to.equal(201);
    expect(res.body.date).to.equal('2026-11-20');
    expect(res.body.created).to.equal(1);
    expect(res.body.data).to.have.length(1);
    const s = res.body.data[0];
    // gross = 2345.67 (final, not the raw 2469.13) + 10000.00 = 12345.67; fee = round(1234567 × 0.006 = 7407.402) = 7407;
    // refunds = 345.67 + 1000.00; net = 1234567 − 134567 − 7407 = 1092593.
    expect(s).to.include({
      merchant_id: a.id,
      period_date: '2026-11-20',
      period_start: '2026-11-19T16:00:00.000Z',
      period_end: '2026-11-20T16:00:00.000Z',
      gross_amount: '12345.67',
      refund_amount: '1345.67',
      fee_amount: '74.07',
      net_amount: '10925.93',
      payment_count: 2,
      refund_count: 2,
      status: 'pending',
      confirmed_at: null,
      paid_at: null,
    });
    expect(s.id).to.be.a('string');
    ids.a20 = s.id;
    const row = await sys.deps.db('settlements').where({ id: s.id }).first();
    expect(row).to.include({ gross_minor: 1_234_567, refund_minor: 134_567, fee_minor: 7_407, net_minor: 1_092_593 });
    // Only A was settled: B has activity on the 20th but was not named.
    expect(await settlementsOf(b.id)).to.have.length(0);
  });

  it('settles local day 2026-11-21 for every merchant: fee half up (12004.5 → 120.05), refund of an earlier day, refunds-only day with negative net', async () => {
    const result = await runSettlement(sys.deps, { day: '2026-11-21' });
    expect(result.day).to.equal('2026-11-21');
    expect(result.created).to.be.at.least(2);
    const [a21] = (await settlementsOf(a.id)).filter((r) => r.period_date === '2026-11-21');
    // gross = 20000.00 + 7.50 = 20007.50; fee = round half up(2000750 × 0.006 = 12004.5) = 12005 (half-even would give 12004);
    // refunds = 500.00 (of a payment of the 20th); net = 2000750 − 50000 − 12005 = 1938745.
    expect(a21).to.include({ gross_minor: 2_000_750, refund_minor: 50_000, fee_minor: 12_005, net_minor: 1_938_745, payment_count: 2, refund_count: 1, status: 'pending' });
    expect(new Date(a21.period_start).toISOString()).to.equal('2026-11-20T16:00:00.000Z');
    expect(new Date(a21.period_end).toISOString()).to.equal('2026-11-21T16:00:00.000Z');
    ids.a21 = a21.id;
    const [b21] = await settlementsOf(b.id);
    expect(b21).to.include({ period_date: '2026-11-21', gross_minor: 0, refund_minor: 3_000, fee_minor: 0, net_minor: -3_000, payment_count: 0, refund_count: 1 });
    ids.b21 = b21.id;

    const listed = await sys.http.get(`/v1/settlements?merchant_id=${b.id}`, { key: sys.adminKey });
    expect(listed.status).to.equal(200);
    expect(listed.body.data).to.have.length(1);
    expect(listed.body.data[0]).to.include({ id: b21.id, gross_amount: '0.00', refund_amount: '30.00', fee_amount: '0.00', net_amount: '-30.00' });
  });

  it('re-running a settled day creates nothing: same ids, created 0, one settlement.generated event per settlement', async () => {
    const again = await run({ date: '2026-11-20', merchant_id: a.id });
    expect(again.status).to.equal(200);
    expect(again.body.created).to.equal(0);
    expect(again.body.data.map((s: { id: string }) => s.id)).to.deep.equal([ids.a20]);

    // Day 20 for every merchant now adds B's settlement of the 20th but leaves A's as it was.
    const all = await runSettlement(sys.deps, { day: '2026-11-20' });
    expect(all.created).to.be.at.least(1);
    const again21 = await runSettlement(sys.deps, { day: '2026-11-21', merchantId: a.id });
    expect(again21.created).to.equal(0);

    const rowsA = await settlementsOf(a.id);
    expect(rowsA.map((r) => [r.period_date, r.id])).to.deep.equal([
      ['2026-11-20', ids.a20],
      ['2026-11-21', ids.a21],
    ]);
    const rowsB = await settlementsOf(b.id);
    expect(rowsB.map((r) => r.period_date)).to.deep.equal(['2026-11-20', '2026-11-21']);
    expect(rowsB[0]).to.include({ gross_minor: 30_000, refund_minor: 0, fee_minor: 0, net_minor: 30_000, payment_count: 1, refund_count: 0 });

    const events = await sys.deps.db('events').where({ merchant_id: a.id, type: 'settlement.generated' }).orderBy('created_at');
    expect(events).to.have.length(2);
    expect(events.map((e) => e.data.id).sort()).to.deep.equal([ids.a20, ids.a21].sort());
    const e20 = events.find((e) => e.data.id === ids.a20)!;
    expect(e20.data).to.include({ merchant_id: a.id, period_date: '2026-11-20', gross_amount: '12345.67', refund_amount: '1345.67', fee_amount: '74.07', net_amount: '10925.93', payment_count: 2, refund_count: 2 });
    const audit = await sys.deps.db('audit_events').where({ action: 'settlement.generate', object_type: 'settlement_day', object_id: '2026-11-20' }).orderBy('id');
    expect(audit.some((r) => (r.context.created as string[]).includes(ids.a20!))).to.equal(true);
  });

  it('two concurrent runs (HTTP) for one merchant and day make exactly one settlement and one event', async () => {
    const c = await createMerchant(sys, { fee_rate: '0.0100' });
    await pay(c.merchant.id, 12_345, '2026-11-20T01:00:00.000Z');
    const [r1, r2] = await Promise.all([run({ date: '2026-11-20', merchant_id: c.merchant.id }), run({ date: '2026-11-20', merchant_id: c.merchant.id })]);
    expect([r1.status, r2.status].sort()).to.deep.equal([200, 201]);
    expect(r1.body.created + r2.body.created).to.equal(1);
    expect(r1.body.data).to.have.length(1);
    expect(r2.body.data).to.have.length(1);
    expect(r1.body.data[0].id).to.equal(r2.body.data[0].id);
    // fee = round(12345 × 0.01 = 123.45) = 123
    expect(r1.body.data[0]).to.include({ gross_amount: '123.45', fee_amount: '1.23', net_amount: '122.22' });
    expect(await settlementsOf(c.merchant.id)).to.have.length(1);
    expect(await sys.deps.db('events').where({ merchant_id: c.merchant.id, type: 'settlement.generated' })).to.have.length(1);
  });

  it('two concurrent settleDay calls (all merchants of a day) settle each merchant once', async () => {
    const d = await createMerchant(sys, { fee_rate: '0.0060' });
    const e = await createMerchant(sys);
    // 250 minor × 0.006 = 1.5 → 2 (half up); 
    await pay(d.merchant.id, 250, '2026-11-19T03:00:00.000Z');
    await pay(e.merchant.id, 999, '2026-11-19T04:00:00.000Z');
    const actor = { actorType: 'system' as const, actorId: 'test', role: null };
    const [x, y] = await Promise.all([settleDay(sys.deps, '2026-11-19', undefined, actor), settleDay(sys.deps, '2026-11-19', undefined, actor)]);
    const mine = (rows: { merchant_id: string }[]) => rows.filter((r) => r.merchant_id === d.merchant.id || r.merchant_id === e.merchant.id);
    expect(mine(x).length + mine(y).length).to.equal(2);
    const dRows = await settlementsOf(d.merchant.id);
    const eRows = await settlementsOf(e.merchant.id);
    expect(dRows).to.have.length(1);
    expect(eRows).to.have.length(1);
    expect(dRows[0]).to.include({ period_date: '2026-11-19', gross_minor: 250, fee_minor: 2, net_minor: 248 });
    expect(eRows[0]).to.include({ period_date: '2026-11-19', gross_minor: 999, fee_minor: 0, net_minor: 999 });
    // A's payment of the 19th (15:59:59.999Z) is on the 19th: 7000 × 0.006 = 42.
    const [a19] = (await settlementsOf(a.id)).filter((r) => r.period_date === '2026-11-19');
    expect(a19).to.include({ gross_minor: 7_000, fee_minor: 42, payment_count: 1, refund_count: 0 });
  });

  it('moves pending → confirmed → paid; any other order is 409 CONFLICT', async () => {
    const id = ids.a20!;
    const post = (action: string, sid = id) => sys.http.post(`/v1/settlements/${sid}/${action}`, {}, { key: sys.adminKey });

    const early = await post('mark-paid');
    expect(early.status).to.equal(409);
    expect(early.body.error.code).to.equal('CONFLICT');
    expect((await sys.deps.db('settlements').where({ id }).first()).status).to.equal('pending');

    const confirmed = await post('confirm');
    expect(confirmed.status).to.equal(200);
    expect(confirmed.body).to.include({ id, status: 'confirmed', paid_at: null });
    expect(confirmed.body.confirmed_at).to.be.a('string');

    const twice = await post('confirm');
    expect(twice.status).to.equal(409);
    expect(twice.body.error.code).to.equal('CONFLICT');

    const paid = await post('mark-paid');
    expect(paid.status).to.equal(200);
    expect(paid.body).to.include({ id, status: 'paid' });
    expect(paid.body.paid_at).to.be.a('string');

    for (const action of ['mark-paid', 'confirm']) {
      const late = await post(action);
      expect(late.status, action).to.equal(409);
      expect(late.body.error.code).to.equal('CONFLICT');
    }
    const row = await sys.deps.db('settlements').where({ id }).first();
    expect(row.status).to.equal('paid');
    // Figures never change with the status.
    expect(row).to.include({ gross_minor: 1_234_567, net_minor: 1_092_593 });

    const actions = (await sys.deps.db('audit_events').where({ object_type: 'settlement', object_id: id }).orderBy('id')).map((r) => r.action);
    expect(actions).to.deep.equal(['settlement.confirm', 'settlement.mark_paid']);

    expect((await post('confirm', '00000000-0000-4000-8000-000000000000')).status).to.equal(404);
    expect((await post('confirm', 'not-a-uuid')).status).to.equal(404);
    const asMerchant = await sys.http.post(`/v1/settlements/${ids.a21}/confirm`, {}, { key: a.key });
    expect(asMerchant.status).to.equal(403);
    expect((await sys.deps.db('settlements').where({ id: ids.a21 }).first()).status).to.equal('pending');
  });

  it('till top-ups: recharge_amount and recharge_count, deducted from net; recharges of no merchant (app, admin) are in no settlement', async () => {
    const f = await createMerchant(sys, { fee_rate: '0.0100' });
    const g = await createMerchant(sys);
    const recharge = (merchantId: string | null, amountMinor: number, at: string) =>
      insertTransaction(sys.deps.db, { type: 'recharge', merchantId, cardId: card.id, memberId: card.memberId, finalMinor: amountMinor, createdAt: at });
    // Local day 2026-11-17 (UTC+8): [2026-11-16T16:00Z, 2026-11-17T16:00Z).
    await pay(f.merchant.id, 10_000, '2026-11-17T02:00:00.000Z');
    await recharge(f.merchant.id, 3_000, '2026-11-16T16:00:00.000Z'); // the day's first instant
    await recharge(f.merchant.id, 2_000, '2026-11-17T15:59:59.000Z');
    await recharge(f.merchant.id, 9_999, '2026-11-17T16:00:00.000Z'); // the 18th
    await recharge(null, 50_000, '2026-11-17T03:00:00.000Z'); // an app or admin recharge: no merchant holds it
    // G only took top-ups that day: nothing sold, and it owes what it took.
    await recharge(g.merchant.id, 4_500, '2026-11-17T05:00:00.000Z');

    const res = await run({ date: '2026-11-17' });
    expect(res.status, JSON.stringify(res.body)).to.equal(201);
    const byMerchant = (id: string) => res.body.data.find((s: { merchant_id: string }) => s.merchant_id === id);
    // F: gross 100.00, fee round(10000 × 0.01) = 1.00, top-ups 30.00 + 20.00; net = 100.00 − 0 − 1.00 − 50.00 = 49.00.
    expect(byMerchant(f.merchant.id)).to.include({ gross_amount: '100.00', refund_amount: '0.00', fee_amount: '1.00', recharge_amount: '50.00', net_amount: '49.00', payment_count: 1, refund_count: 0, recharge_count: 2 });
    expect(byMerchant(g.merchant.id)).to.include({ gross_amount: '0.00', fee_amount: '0.00', recharge_amount: '45.00', net_amount: '-45.00', payment_count: 0, recharge_count: 1 });
    // The admin recharge is no merchant's: nothing settles it.
    expect(res.body.data.filter((s: { merchant_id: string | null }) => s.merchant_id === null)).to.have.length(0);
    const [row] = await settlementsOf(f.merchant.id);
    expect(row).to.include({ gross_minor: 10_000, fee_minor: 100, recharge_minor: 5_000, recharge_count: 2, net_minor: 4_900 });
  });

  it('a merchant reads its own settlements as JSON and CSV; another merchant gets 404', async () => {
    const list = await sys.http.get('/v1/merchant/settlements', { key: a.key });
    expect(list.status).to.equal(200);
    expect(list.body.data.map((s: { id: string }) => s.id)).to.have.members([ids.a20, ids.a21, (await settlementsOf(a.id)).find((r) => r.period_date === '2026-11-19')!.id]);
    expect(list.body.data.every((s: { merchant_id: string }) => s.merchant_id === a.id)).to.equal(true);
    expect(list.body.next_cursor).to.equal(null);

    const one = await sys.http.get('/v1/merchant/settlements?from=2026-11-21&to=2026-11-21', { key: a.key });
    expect(one.body.data.map((s: { id: string }) => s.id)).to.deep.equal([ids.a21]);
    const paid = await sys.http.get('/v1/merchant/settlements?status=paid', { key: a.key });
    expect(paid.body.data.map((s: { id: string }) => s.id)).to.deep.equal([ids.a20]);

    const json = await sys.http.get(`/v1/merchant/settlements/${ids.a20}`, { key: a.key });
    expect(json.status).to.equal(200);
    expect(json.body).to.include({ id: ids.a20, merchant_id: a.id, period_date: '2026-11-20', gross_amount: '12345.67', fee_amount: '74.07', net_amount: '10925.93', status: 'paid' });

    const csv = await sys.http.get(`/v1/merchant/settlements/${ids.a20}.csv`, { key: a.key });
    expect(csv.status).to.equal(200);
    expect(csv.headers.get('content-type')).to.match(/^text\/csv/);
    expect(csv.headers.get('content-disposition')).to.contain('settlement-2026-11-20.csv');
    const lines = csv.text.trimEnd().split('\n');
    expect(lines).to.have.length(2);
    const header = lines[0]!.split(',');
    // The till top-up columns came later: they are appended, so columns read by position stay where they were.
    expect(header).to.deep.equal(['id', 'merchant_id', 'period_date', 'period_start', 'period_end', 'gross_amount', 'refund_amount', 'fee_amount', 'net_amount', 'payment_count', 'refund_count', 'status', 'created_at', 'recharge_amount', 'recharge_count']);
    const row = Object.fromEntries(header.map((h, i) => [h, lines[1]!.split(',')[i]]));
    expect(row).to.include({
      id: ids.a20,
      merchant_id: a.id,
      period_date: '2026-11-20',
      period_start: '2026-11-19T16:00:00.000Z',
      period_end: '2026-11-20T16:00:00.000Z',
      gross_amount: '12345.67',
      refund_amount: '1345.67',
      fee_amount: '74.07',
      net_amount: '10925.93',
      payment_count: '2',
      refund_count: '2',
      status: 'paid',
      recharge_amount: '0.00',
      recharge_count: '0',
    });

    // B cannot see A's settlement (404, not 403), and its own list holds only its own.
    for (const path of [`/v1/merchant/settlements/${ids.a20}`, `/v1/merchant/settlements/${ids.a20}.csv`]) {
      const other = await sys.http.get(path, { key: b.key });
      expect(other.status, path).to.equal(404);
      expect(other.body.error.code).to.equal('NOT_FOUND');
    }
    const bList = await sys.http.get('/v1/merchant/settlements', { key: b.key });
    expect(bList.body.data.map((s: { merchant_id: string }) => s.merchant_id)).to.deep.equal([b.id, b.id]);
    expect((await sys.http.get('/v1/merchant/settlements/nope', { key: a.key })).status).to.equal(404);
    // Admin routes are not for merchants, and the merchant routes not for admins.
    expect((await sys.http.get('/v1/settlements', { key: a.key })).status).to.equal(403);
    expect((await sys.http.get('/v1/merchant/settlements', { key: sys.adminKey })).status).to.equal(403);
  });

  it('the admin list filters by merchant, status and period, and pages with a cursor', async () => {
    const all = await sys.http.get(`/v1/settlements?merchant_id=${a.id}`, { key: sys.adminKey });
    expect(all.body.data).to.have.length(3);
    const pending = await sys.http.get(`/v1/settlements?merchant_id=${a.id}&status=pending`, { key: sys.adminKey });
    expect(pending.body.data.map((s: { period_date: string }) => s.period_date).sort()).to.deep.equal(['2026-11-19', '2026-11-21']);
    const first = await sys.http.get(`/v1/settlements?merchant_id=${a.id}&limit=2`, { key: sys.adminKey });
    expect(first.body.data).to.have.length(2);
    expect(first.body.next_cursor).to.be.a('string');
    const second = await sys.http.get(`/v1/settlements?merchant_id=${a.id}&limit=2&cursor=${encodeURIComponent(first.body.next_cursor)}`, { key: sys.adminKey });
    expect(second.body.data).to.have.length(1);
    expect(second.body.next_cursor).to.equal(null);
    const seen = [...first.body.data, ...second.body.data].map((s: { id: string }) => s.id);
    expect(new Set(seen).size).to.equal(3);
    const day = await sys.http.get(`/v1/settlements?from=2026-11-20&to=2026-11-20&merchant_id=${a.id}`, { key: sys.adminKey });
    expect(day.body.data.map((s: { id: string }) => s.id)).to.deep.equal([ids.a20]);
  });

  it('rejects a malformed run request with 400 VALIDATION_ERROR and settles nothing', async () => {
    const before = await sys.deps.db('settlements').count<{ n: number }[]>({ n: '*' });
    for (const body of [{ date: '2026-13-01' }, { date: '2026-11-2' }, { date: 'yesterday' }, { date: '20261120' }, {}, { date: 20261120 }, { date: '2026-11-20', extra: 1 }, { date: '2026-11-20', merchant_id: 'x' }]) {
      const res = await run(body);
      expect(res.status, JSON.stringify(body)).to.equal(400);
      expect(res.body.error.code, JSON.stringify(body)).to.equal('VALIDATION_ERROR');
    }
    const bad = await sys.http.get('/v1/settlements?from=2026-1-1', { key: sys.adminKey });
    expect(bad.status).to.equal(400);
    expect((await sys.http.post('/v1/settlements/run', { date: '2026-11-20' }, { key: a.key })).status).to.equal(403);
    const afterCount = await sys.deps.db('settlements').count<{ n: number }[]>({ n: '*' });
    expect(afterCount[0]!.n).to.equal(before[0]!.n);
  });

  it('rejects an impossible calendar date (2026-02-30) with 400 VALIDATION_ERROR, not a server error', async () => {
    const res = await run({ date: '2026-02-30', merchant_id: a.id });
    expect(res.status, JSON.stringify(res.body)).to.equal(400);
    expect(res.body.error.code).to.equal('VALIDATION_ERROR');
    const list = await sys.http.get('/v1/settlements?from=2026-02-30', { key: sys.adminKey });
    expect(list.status, JSON.stringify(list.body)).to.equal(400);
  });

  it('refuses to settle a local day that has not ended yet (today or later): its later payments could never be settled', async () => {
    const f = await createMerchant(sys);
    await insertTransaction(sys.deps.db, { type: 'payment', merchantId: f.merchant.id, cardId: card.id, finalMinor: 5_000, createdAt: new Date() });
    const { rows } = await sys.deps.db.raw<{ rows: { today: string; tomorrow: string }[] }>(
      `SELECT to_char((now() AT TIME ZONE 'Asia/Taipei')::date, 'YYYY-MM-DD') AS today, to_char((now() AT TIME ZONE 'Asia/Taipei')::date + 1, 'YYYY-MM-DD') AS tomorrow`,
    );
    for (const date of [rows[0]!.today, rows[0]!.tomorrow]) {
      const res = await run({ date, merchant_id: f.merchant.id });
      expect(res.status, `${date}: ${JSON.stringify(res.body)}`).to.be.oneOf([400, 409, 422]);
    }
    expect(await settlementsOf(f.merchant.id)).to.have.length(0);
  });

  it('a 25-hour local day (DST ends in America/New_York on 2026-11-01) is settled whole', async () => {
    const h = await createMerchant(sys);
    const id = h.merchant.id;
    // Local 2026-11-01 = [04:00Z (00:00 EDT), 2026-11-02T05:00Z (00:00 EST)): 25 hours.
    await pay(id, 100, '2026-11-01T03:59:59.000Z'); // 23:59:59 EDT on Oct 31
    await pay(id, 200, '2026-11-01T04:00:00.000Z'); // 00:00 EDT
    await pay(id, 300, '2026-11-02T04:30:00.000Z'); // 23:30 EST: the 25th hour
    await pay(id, 400, '2026-11-02T05:00:00.000Z'); // 00:00 EST on Nov 2
    const rows = await generateSettlements(sys.deps.db, '2026-11-01', 'America/New_York', id);
    expect(rows).to.have.length(1);
    expect(rows[0]).to.include({ period_date: '2026-11-01', gross_minor: 500, payment_count: 2 });
    expect(new Date(rows[0]!.period_start).toISOString()).to.equal('2026-11-01T04:00:00.000Z');
    expect(new Date(rows[0]!.period_end).toISOString()).to.equal('2026-11-02T05:00:00.000Z');
  });

  it('the scheduled run (no day given) settles the previous local day in SETTLEMENT_TZ, from Postgres time', async () => {
    const g = await createMerchant(sys);
    const { rows } = await sys.deps.db.raw<{ rows: { yesterday: string; noon: Date }[] }>(
      `SELECT to_char((now() AT TIME ZONE 'Asia/Taipei')::date - 1, 'YYYY-MM-DD') AS yesterday,
              (((now() AT TIME ZONE 'Asia/Taipei')::date - 1) + time '12:00') AT TIME ZONE 'Asia/Taipei' AS noon`,
    );
    const { yesterday, noon } = rows[0]!;
    await insertTransaction(sys.deps.db, { type: 'payment', merchantId: g.merchant.id, cardId: card.id, finalMinor: 4_321, createdAt: noon });
    const result = await runSettlement(sys.deps, { merchantId: g.merchant.id });
    expect(result).to.deep.equal({ day: yesterday, created: 1 });
    const [s] = await settlementsOf(g.merchant.id);
    expect(s).to.include({ period_date: yesterday, gross_minor: 4_321, payment_count: 1 });
  });
});
