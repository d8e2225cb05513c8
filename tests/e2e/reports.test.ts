import { randomBytes } from 'node:crypto';
import { expect } from 'chai';
import type { Knex } from 'knex';
import { rollupLimit } from '../../db/queries/reports.js';
import { runReportRollup } from '../../jobs/report-rollup.js';
import { createAppKey, createMember, createMerchant, issueCard, memberToken, type CardJson } from '../helpers/fixtures.js';
import { freshDatabase } from '../helpers/fresh-database.js';
import { charge, chargeOk, expectError, expectFailed, expectSucceeded, issueQr, recharge, rechargeOk, refund, sleep } from '../helpers/money.js';
import { startSystem, type TestSystem } from '../helpers/system.js';
import type { PeriodJson } from '../helpers/report-json.js';

const TZ = 'Asia/Taipei';
const unknownQr = () => `mpsq_${randomBytes(32).toString('base64url')}`;

const money = (minor: number) => `${minor < 0 ? '-' : ''}${Math.floor(Math.abs(minor) / 100)}.${String(Math.abs(minor) % 100).padStart(2, '0')}`;
const addDays = (day: string, n: number) => new Date(Date.parse(`${day}T00:00:00Z`) + n * 86_400_000).toISOString().slice(0, 10);

/**
 * The report as it should be, computed here from the raw rows with none of the app's SQL: every
 * transaction and failed payment of the database, bucketed in JavaScript.
 */
async function expectedReport(db: Knex, tz: string, scope: { merchantId?: string }, periods: { date: string; hour?: number }[]): Promise<PeriodJson[]> {
  const { rows: txs } = await db.raw(
    `SELECT merchant_id, type, payment_method, card_id, final_amount_minor AS minor, to_char(created_at AT TIME ZONE ?, 'YYYY-MM-DD') AS day, extract(hour FROM created_at AT TIME ZONE ?)::int AS hour
       FROM transactions WHERE merchant_id IS NOT NULL`,
    [tz, tz],
  );
  const { rows: fails } = await db.raw(
    `SELECT merchant_id, error_code, to_char(completed_at AT TIME ZONE ?, 'YYYY-MM-DD') AS day, extract(hour FROM completed_at AT TIME ZONE ?)::int AS hour
       FROM operations WHERE type = 'payment' AND status = 'failed'`,
    [tz, tz],
  );
  const inScope = (r: { merchant_id: string }) => scope.merchantId === undefined || r.merchant_id === scope.merchantId;
  return periods.map((p) => {
    const inPeriod = (r: { day: string; hour: number }) => r.day === p.date && (p.hour === undefined || r.hour === p.hour);
    const mine = txs.filter((r: any) => inScope(r) && inPeriod(r));
    const of = (type: string) => mine.filter((r: any) => r.type === type);
    const sum = (rs: any[]) => rs.reduce((s, r) => s + Number(r.minor), 0);
    const payments = of('payment');
    const byMethod: Record<string, string> = {};
    for (const m of [...new Set<string>(payments.map((r: any) => r.payment_method))].sort()) byMethod[m] = money(sum(payments.filter((r: any) => r.payment_method === m)));
    const declines: Record<string, number> = {};
    for (const f of fails.filter((r: any) => inScope(r) && inPeriod(r))) declines[f.error_code] = (declines[f.error_code] ?? 0) + 1;
    return {
      date: p.date,
      ...(p.hour === undefined ? {} : { hour: p.hour }),
      payment_count: payments.length,
      payment_amount: money(sum(payments)),
      refund_count: of('refund').length,
      refund_amount: money(sum(of('refund'))),
      recharge_count: of('recharge').length,
      recharge_amount: money(sum(of('recharge'))),
      net_amount: money(sum(payments) - sum(of('refund')) - sum(of('recharge'))),
      distinct_cards: new Set(payments.map((r: any) => r.card_id)).size,
      by_method: byMethod,
      declines,
    };
  });
}

const days = (from: string, to: string) => Array.from({ length: Math.round((Date.parse(to) - Date.parse(from)) / 86_400_000) + 1 }, (_, i) => ({ date: addDays(from, i) }));
const hoursOf = (date: string) => Array.from({ length: 24 }, (_, hour) => ({ date, hour }));

describe('e2e: daily reports (merchant and platform, by day and hour, CSV, rollup)', function () {
  this.timeout(120_000);
  let database: Awaited<ReturnType<typeof freshDatabase>>;
  let sys: TestSystem;
  let today: string;
  let a: { key: string; id: string };
  let b: { key: string; id: string };
  let c: { key: string; id: string };
  let prepaidA: CardJson;
  let standardA: CardJson;
  let prepaidC: CardJson;
  let standardC: CardJson;
  /** C's payments, moved into the past by SQL: [tx_no, final minor]. */
  const moved: Record<string, string> = {};

  const get = async (path: string, key: string) => {
    const res = await sys.http.get(path, { key });
    expect(res.status, `${path}: ${res.text}`).to.equal(200);
    return res.body as { merchant_id: string | null; time_zone: string; granularity: string; from: string; to: string; data: PeriodJson[] };
  };
  const payOk = async (merchantKey: string, card: CardJson, amount: string, method?: string) => (await chargeOk(sys, merchantKey, card.id, amount, method ? { payment_method: method } : {})).result!.tx_no as string;
  /** Moves a transaction to `local` (a wall-clock time in TZ) or to an instant given with its offset. */
  const moveTx = (txNo: string, at: string) => sys.deps.db.raw(`UPDATE transactions SET created_at = ?::timestamptz WHERE tx_no = ?`, [at, txNo]);
  const moveDecline = (operationId: string, at: string) => sys.deps.db.raw(`UPDATE operations SET created_at = ?::timestamptz, completed_at = ?::timestamptz WHERE id = ?`, [at, at, operationId]);

  before(async () => {
    database = await freshDatabase('mps_reports');
    // A grace of 1 s: the rollup reaches up to a second ago, so a statement in flight (a worker's) does not hold it back.
    sys = await startSystem({ SETTLEMENT_TZ: TZ, REPORT_ROLLUP_GRACE_S: 1 }, { databaseUrl: database.url });
    today = (await sys.deps.db.raw(`SELECT to_char((now() AT TIME ZONE ?)::date, 'YYYY-MM-DD') AS d`, [TZ])).rows[0].d;
    const [ma, mb, mc] = [await createMerchant(sys), await createMerchant(sys), await createMerchant(sys)];
    a = { key: ma.key, id: ma.merchant.id };
    b = { key: mb.key, id: mb.merchant.id };
    c = { key: mc.key, id: mc.merchant.id };

    const owner = await createMember(sys);
    standardA = owner.cards[0]!;
    prepaidA = await issueCard(sys, { type: 'prepaid', ownerMemberId: owner.id });
    await rechargeOk(sys, prepaidA.id, '1000.00');

    // Merchant A today: three payments by three methods, a partial refund, two declines, a till top-up.
    const paidByBalance = await payOk(a.key, prepaidA, '100.00');
    await payOk(a.key, standardA, '50.00', 'cash');
    await payOk(a.key, standardA, '30.00', 'credit_card');
    expectSucceeded(await refund(sys, a.key, { original_tx_no: paidByBalance, amount: '20.00' }), 'refund');
    expectFailed(await charge(sys, a.key, { qr: await issueQr(sys, prepaidA.id), amount: '5000.00' }), 'INSUFFICIENT_BALANCE');
    expectFailed(await charge(sys, a.key, { qr: unknownQr(), amount: '1.00' }), 'QR_EXPIRED_OR_INVALID');
    // A till top-up: POST /v1/recharges (a merchant's recharge) is being built; until then an admin
    // recharge stands in for it, given the merchant the till top-up will carry.
    const till = expectSucceeded(await recharge(sys, prepaidA.id, { amount: '200.00' }), 'recharge');
    await sys.deps.db('transactions').where({ operation_id: till.id }).update({ merchant_id: a.id });

    // Merchant B today: the same standard card pays there too, and one decline.
    await payOk(b.key, standardA, '70.00', 'cash');
    expectFailed(await charge(sys, b.key, { qr: unknownQr(), amount: '1.00' }), 'QR_EXPIRED_OR_INVALID');

    // Merchant C: payments made now, then moved into the past (around a local midnight, and to
    // earlier days), so that days and hours in SETTLEMENT_TZ and the rollup have history to work on.
    const ownerC = await createMember(sys);
    standardC = ownerC.cards[0]!;
    prepaidC = await issueCard(sys, { type: 'prepaid', ownerMemberId: ownerC.id });
    await rechargeOk(sys, prepaidC.id, '500.00');
    moved.lastMsOfDay = await payOk(c.key, standardC, '11.00', 'cash');
    moved.firstOfNextDay = await payOk(c.key, standardC, '12.00', 'cash');
    moved.threeDaysAgo = await payOk(c.key, prepaidC, '13.00');
    moved.twoDaysAgo = await payOk(c.key, prepaidC, '14.00');
    moved.threeDaysAgoLate = await payOk(c.key, standardC, '15.00', 'wechat');
    const declined = expectFailed(await charge(sys, c.key, { qr: unknownQr(), amount: '1.00' }), 'QR_EXPIRED_OR_INVALID');
    // 2026-03-09 23:59:59.999 and 2026-03-10 00:00:00 in Taipei (+08:00), both 2026-03-09 in UTC.
    await moveTx(moved.lastMsOfDay, '2026-03-09T15:59:59.999Z');
    await moveTx(moved.firstOfNextDay, '2026-03-09T16:00:00Z');
    await moveDecline(declined.id, '2026-03-09T16:30:00Z');
    await moveTx(moved.threeDaysAgo, `${addDays(today, -3)}T10:00:00+08:00`);
    await moveTx(moved.twoDaysAgo, `${addDays(today, -2)}T09:15:00+08:00`);
    await moveTx(moved.threeDaysAgoLate, `${addDays(today, -3)}T23:00:00+08:00`);
  });
  after(async () => {
    await sys?.stop();
    await database?.drop();
  });

  describe('live figures (nothing rolled up yet)', () => {
    it("a merchant's report: 30 days ending today by default, its own figures exactly, zeros elsewhere", async () => {
      const report = await get('/v1/merchant/reports/daily', a.key);
      expect(report).to.include({ merchant_id: a.id, time_zone: TZ, granularity: 'day', from: addDays(today, -29), to: today });
      expect(report.data.map((d) => d.date)).to.deep.equal(days(addDays(today, -29), today).map((d) => d.date));
      const todayRow = report.data.at(-1)!;
      expect(todayRow).to.deep.equal({
        date: today,
        payment_count: 3,
        payment_amount: '180.00',
        refund_count: 1,
        refund_amount: '20.00',
        recharge_count: 1,
        recharge_amount: '200.00',
        net_amount: '-40.00',
        distinct_cards: 2,
        by_method: { balance: '100.00', cash: '50.00', credit_card: '30.00' },
        declines: { INSUFFICIENT_BALANCE: 1, QR_EXPIRED_OR_INVALID: 1 },
      });
      for (const row of report.data.slice(0, -1)) expect(row, row.date).to.deep.include({ payment_count: 0, payment_amount: '0.00', net_amount: '0.00', distinct_cards: 0, by_method: {}, declines: {} });
      expect(report.data).to.deep.equal(await expectedReport(sys.deps.db, TZ, { merchantId: a.id }, days(addDays(today, -29), today)));
    });

    it("another merchant's report holds only its own data; an admin's ?merchant_id= gives the same", async () => {
      const own = await get(`/v1/merchant/reports/daily?from=${today}&to=${today}`, b.key);
      expect(own.data).to.deep.equal([
        { date: today, payment_count: 1, payment_amount: '70.00', refund_count: 0, refund_amount: '0.00', recharge_count: 0, recharge_amount: '0.00', net_amount: '70.00', distinct_cards: 1, by_method: { cash: '70.00' }, declines: { QR_EXPIRED_OR_INVALID: 1 } },
      ]);
      const byAdmin = await get(`/v1/reports/daily?merchant_id=${b.id}&from=${today}&to=${today}`, sys.adminKey);
      expect(byAdmin.merchant_id).to.equal(b.id);
      expect(byAdmin.data).to.deep.equal(own.data);
      // C's history is not A's: the 2026-03-09/10 days are empty for A.
      const aMarch = await get('/v1/merchant/reports/daily?from=2026-03-09&to=2026-03-10', a.key);
      expect(aMarch.data.map((d) => d.payment_count)).to.deep.equal([0, 0]);
    });

    it('the platform-wide report: every merchant, distinct cards counted once across shops', async () => {
      const report = await get(`/v1/reports/daily?from=${today}&to=${today}`, sys.adminKey);
      expect(report.merchant_id).to.equal(null);
      expect(report.data).to.deep.equal([
        {
          date: today,
          payment_count: 4,
          payment_amount: '250.00',
          refund_count: 1,
          refund_amount: '20.00',
          recharge_count: 1,
          recharge_amount: '200.00',
          net_amount: '30.00',
          // The standard card paid at A and at B: 2 cards in all, though A counts 2 and B 1.
          distinct_cards: 2,
          by_method: { balance: '100.00', cash: '120.00', credit_card: '30.00' },
          declines: { INSUFFICIENT_BALANCE: 1, QR_EXPIRED_OR_INVALID: 2 },
        },
      ]);
      const year = await get(`/v1/reports/daily?from=${addDays(today, -365)}&to=${today}`, sys.adminKey);
      expect(year.data).to.have.length(366);
      expect(year.data).to.deep.equal(await expectedReport(sys.deps.db, TZ, {}, days(addDays(today, -365), today)));
    });

    it('refuses other roles, other tenants and bad ranges', async () => {
      // A merchant on the admin route, an app key and a member token on either.
      expectError(await sys.http.get('/v1/reports/daily', { key: a.key }), 403, 'FORBIDDEN');
      expectError(await sys.http.get('/v1/reports/daily.csv', { key: a.key }), 403, 'FORBIDDEN');
      expectError(await sys.http.get('/v1/merchant/reports/daily', { key: sys.adminKey }), 403, 'FORBIDDEN');
      const appKey = await createAppKey(sys);
      const token = await memberToken(sys, (await createMember(sys)).id);
      for (const key of [appKey, token]) {
        expectError(await sys.http.get('/v1/merchant/reports/daily', { key }), 403, 'FORBIDDEN');
        expectError(await sys.http.get('/v1/reports/daily', { key }), 403, 'FORBIDDEN');
      }
      expectError(await sys.http.get('/v1/merchant/reports/daily'), 401, 'UNAUTHENTICATED');
      // A merchant cannot name another merchant: the field does not exist on its route.
      const other = await sys.http.get(`/v1/merchant/reports/daily?merchant_id=${b.id}`, { key: a.key });
      expectError(other, 400, 'VALIDATION_ERROR');
      expect(other.body.error.details.unknown_fields).to.deep.equal(['merchant_id']);
      expectError(await sys.http.get(`/v1/reports/daily?merchant_id=${randomUuid()}`, { key: sys.adminKey }), 404, 'NOT_FOUND');
      for (const query of [
        'merchant_id=not-a-uuid',
        'from=2026-02-30',
        'from=2026-1-01',
        'to=0001-01-01',
        'from=2026-05-02&to=2026-05-01',
        'from=2025-01-01&to=2026-01-02',
        `from=${addDays(today, 1)}`,
        'granularity=week',
        'granularity=hour&from=2026-05-01',
        'date=2026-05-01',
        'from=2026-05-01&from=2026-05-02',
      ]) {
        expectError(await sys.http.get(`/v1/reports/daily?${query}`, { key: sys.adminKey }), 400, 'VALIDATION_ERROR');
      }
      // 366 days is the most.
      expect((await get('/v1/reports/daily?from=2025-01-01&to=2026-01-01', sys.adminKey)).data).to.have.length(366);
    });

    it("the hourly breakdown of one day: 24 rows with hour, summing to the day's figures", async () => {
      const report = await get(`/v1/merchant/reports/daily?granularity=hour`, a.key);
      expect(report).to.include({ granularity: 'hour', from: today, to: today });
      expect(report.data.map((h) => h.hour)).to.deep.equal([...Array(24).keys()]);
      expect(report.data.every((h) => h.date === today)).to.equal(true);
      expect(report.data).to.deep.equal(await expectedReport(sys.deps.db, TZ, { merchantId: a.id }, hoursOf(today)));
      const sum = (f: (h: PeriodJson) => number) => report.data.reduce((s, h) => s + f(h), 0);
      expect(sum((h) => h.payment_count)).to.equal(3);
      expect(sum((h) => Math.round(Number(h.net_amount) * 100))).to.equal(-4000);
      expect(sum((h) => Object.values(h.declines).reduce((x, y) => x + y, 0))).to.equal(2);
      const platform = await get(`/v1/reports/daily?granularity=hour&date=${today}`, sys.adminKey);
      expect(platform.data).to.deep.equal(await expectedReport(sys.deps.db, TZ, {}, hoursOf(today)));
    });

    it('CSV: a header row, then the same figures, methods and decline codes as columns', async () => {
      const res = await sys.http.get(`/v1/merchant/reports/daily.csv?from=${addDays(today, -1)}&to=${today}`, { key: a.key });
      expect(res.status, res.text).to.equal(200);
      expect(res.headers.get('content-type')).to.match(/^text\/csv/);
      expect(res.headers.get('content-disposition')).to.equal(`attachment; filename="report-daily-${addDays(today, -1)}-${today}.csv"`);
      expect(res.text.split('\n')).to.deep.equal([
        'date,payment_count,payment_amount,refund_count,refund_amount,recharge_count,recharge_amount,net_amount,distinct_cards,by_method.balance,by_method.cash,by_method.credit_card,declines.INSUFFICIENT_BALANCE,declines.QR_EXPIRED_OR_INVALID',
        `${addDays(today, -1)},0,0.00,0,0.00,0,0.00,0.00,0,0.00,0.00,0.00,0,0`,
        `${today},3,180.00,1,20.00,1,200.00,-40.00,2,100.00,50.00,30.00,1,1`,
        '',
      ]);
      const hourly = await sys.http.get(`/v1/reports/daily.csv?granularity=hour&date=2026-03-10&merchant_id=${c.id}`, { key: sys.adminKey });
      expect(hourly.status, hourly.text).to.equal(200);
      const lines = hourly.text.trim().split('\n');
      expect(lines[0]).to.equal('date,hour,payment_count,payment_amount,refund_count,refund_amount,recharge_count,recharge_amount,net_amount,distinct_cards,by_method.cash,declines.QR_EXPIRED_OR_INVALID');
      expect(lines).to.have.length(25);
      expect(lines[1]).to.equal('2026-03-10,0,1,12.00,0,0.00,0,0.00,12.00,1,12.00,1');
      expect(lines[2]).to.equal('2026-03-10,1,0,0.00,0,0.00,0,0.00,0.00,0,0.00,0');
    });

    it('days and hours are those of SETTLEMENT_TZ: 23:59:59.999 and 00:00 local fall on two days', async () => {
      const march = await get('/v1/merchant/reports/daily?from=2026-03-09&to=2026-03-10', c.key);
      expect(march.data.map((d) => [d.date, d.payment_count, d.payment_amount, d.declines])).to.deep.equal([
        ['2026-03-09', 1, '11.00', {}],
        ['2026-03-10', 1, '12.00', { QR_EXPIRED_OR_INVALID: 1 }],
      ]);
      const before = await get('/v1/merchant/reports/daily?granularity=hour&date=2026-03-09', c.key);
      expect(before.data.filter((h) => h.payment_count).map((h) => [h.hour, h.payment_amount])).to.deep.equal([[23, '11.00']]);
      const after = await get('/v1/merchant/reports/daily?granularity=hour&date=2026-03-10', c.key);
      expect(after.data.filter((h) => h.payment_count || Object.keys(h.declines).length).map((h) => [h.hour, h.payment_amount, h.declines])).to.deep.equal([[0, '12.00', { QR_EXPIRED_OR_INVALID: 1 }]]);

      // The same rows read by a system in UTC: one day, hours 15 and 16.
      const utc = await startSystem({ SETTLEMENT_TZ: 'UTC' }, { databaseUrl: database.url, workers: false });
      try {
        const res = await utc.http.get(`/v1/reports/daily?merchant_id=${c.id}&from=2026-03-09&to=2026-03-10`, { key: utc.adminKey });
        expect(res.status, res.text).to.equal(200);
        expect(res.body.time_zone).to.equal('UTC');
        expect(res.body.data.map((d: PeriodJson) => [d.date, d.payment_count, d.payment_amount, d.declines])).to.deep.equal([
          ['2026-03-09', 2, '23.00', { QR_EXPIRED_OR_INVALID: 1 }],
          ['2026-03-10', 0, '0.00', {}],
        ]);
        const hours = await utc.http.get(`/v1/reports/daily?merchant_id=${c.id}&granularity=hour&date=2026-03-09`, { key: utc.adminKey });
        expect(hours.body.data.filter((h: PeriodJson) => h.payment_count).map((h: PeriodJson) => [h.hour, h.payment_amount])).to.deep.equal([
          [15, '11.00'],
          [16, '12.00'],
        ]);
      } finally {
        await utc.stop();
      }
    });
  });

  describe('the rollup (report-rollup job) and the live part together', () => {
    let beforeRollup: Record<string, PeriodJson[]> = {};
    const rollupColumns = ['merchant_id', 'day', 'payment_count', 'payment_minor', 'refund_minor', 'recharge_minor', 'distinct_cards', 'by_method', 'declines'];
    const rolledRows = async () => ({
      days: await sys.deps.db('report_daily').orderBy(['day', 'merchant_id']).select(rollupColumns),
      hours: await sys.deps.db('report_hourly').orderBy(['day', 'hour', 'merchant_id']).select([...rollupColumns, 'hour']),
    });
    const state = () => sys.deps.db('report_rollup_state').first();

    it('rolls every day with activity up to now, and every report reads the same as before and as a direct sum', async () => {
      expect(await state()).to.equal(undefined);
      const span = days('2026-03-01', today);
      // Live only, before: what the rollup must not change.
      beforeRollup = {
        platform: (await get(`/v1/reports/daily?from=2026-03-01&to=${today}`, sys.adminKey)).data,
        c: (await get(`/v1/merchant/reports/daily?from=2026-03-01&to=${today}`, c.key)).data,
        a: (await get(`/v1/merchant/reports/daily?from=2026-03-01&to=${today}`, a.key)).data,
        aHours: (await get(`/v1/merchant/reports/daily?granularity=hour`, a.key)).data,
        cHours: (await get(`/v1/merchant/reports/daily?granularity=hour&date=${addDays(today, -3)}`, c.key)).data,
        platformHours: (await get(`/v1/reports/daily?granularity=hour&date=2026-03-10`, sys.adminKey)).data,
      };
      // The rollup stops at the oldest open transaction (rows it may still commit); on a loaded
      // machine a worker's may still be open from before now: wait until none older is.
      const settled = new Date();
      for (let i = 0; i < 200 && (await rollupLimit(sys.deps.db, 1)).limit_at < settled; i++) await sleep(100);
      const startedAt = Date.now();
      const first = await runReportRollup(sys.deps);
      // Held back by a transaction open since before today's payments? Then say which.
      const open = first.stopped ? (await sys.deps.db.raw(`SELECT application_name, state, xact_start, left(query, 120) AS query FROM pg_stat_activity WHERE datname = current_database() AND xact_start IS NOT NULL`)).rows : [];
      expect(first, JSON.stringify(open)).to.not.have.property('stopped');
      // Days with activity: 2026-03-09, 03-10, today-3, today-2 and today (the quiet days between are passed over).
      expect(first.rolled).to.equal(5);
      expect(Date.parse(first.rolled_until)).to.be.within(startedAt - 5_000, Date.now());
      expect(await state()).to.deep.include({ time_zone: TZ, rolled_until: new Date(first.rolled_until) });
      const rolled = await sys.deps.db('report_daily').orderBy(['day', 'merchant_id']).select('merchant_id', 'day', 'payment_count');
      const sortIds = (rows: { merchant_id: string | null; day: string; payment_count: number }[]) => rows.sort((x, y) => (x.day + (x.merchant_id ?? '~')).localeCompare(y.day + (y.merchant_id ?? '~')));
      expect(sortIds(rolled)).to.deep.equal(
        sortIds([
          { merchant_id: c.id, day: '2026-03-09', payment_count: 1 },
          { merchant_id: null, day: '2026-03-09', payment_count: 1 },
          { merchant_id: c.id, day: '2026-03-10', payment_count: 1 },
          { merchant_id: null, day: '2026-03-10', payment_count: 1 },
          { merchant_id: c.id, day: addDays(today, -3), payment_count: 2 },
          { merchant_id: null, day: addDays(today, -3), payment_count: 2 },
          { merchant_id: c.id, day: addDays(today, -2), payment_count: 1 },
          { merchant_id: null, day: addDays(today, -2), payment_count: 1 },
          { merchant_id: a.id, day: today, payment_count: 3 },
          { merchant_id: b.id, day: today, payment_count: 1 },
          { merchant_id: null, day: today, payment_count: 4 },
        ]),
      );
      expect(await sys.deps.db('report_hourly').where({ day: addDays(today, -3) }).whereNotNull('merchant_id').orderBy('hour').select('hour', 'payment_minor')).to.deep.equal([
        { hour: 10, payment_minor: 1300 },
        { hour: 23, payment_minor: 1500 },
      ]);

      // Rolled periods plus the live part after them, by day and by hour, equal what they were and a direct sum.
      const platform = (await get(`/v1/reports/daily?from=2026-03-01&to=${today}`, sys.adminKey)).data;
      const mine = (await get(`/v1/merchant/reports/daily?from=2026-03-01&to=${today}`, c.key)).data;
      expect(platform).to.deep.equal(beforeRollup.platform);
      expect(mine).to.deep.equal(beforeRollup.c);
      expect((await get(`/v1/merchant/reports/daily?from=2026-03-01&to=${today}`, a.key)).data).to.deep.equal(beforeRollup.a);
      expect(platform).to.deep.equal(await expectedReport(sys.deps.db, TZ, {}, span));
      expect(mine).to.deep.equal(await expectedReport(sys.deps.db, TZ, { merchantId: c.id }, span));
      expect((await get(`/v1/merchant/reports/daily?granularity=hour`, a.key)).data).to.deep.equal(beforeRollup.aHours);
      expect((await get(`/v1/merchant/reports/daily?granularity=hour&date=${addDays(today, -3)}`, c.key)).data).to.deep.equal(beforeRollup.cHours);
      expect((await get(`/v1/reports/daily?granularity=hour&date=2026-03-10`, sys.adminKey)).data).to.deep.equal(beforeRollup.platformHours);
      // The rolled part really is read from the rollup: a (deliberately wrong) rolled row shows.
      await sys.deps.db('report_daily').where({ merchant_id: c.id, day: addDays(today, -2) }).update({ payment_count: 99 });
      expect((await get(`/v1/merchant/reports/daily?from=${addDays(today, -2)}&to=${addDays(today, -2)}`, c.key)).data[0]!.payment_count).to.equal(99);
      await sys.deps.db('report_daily').where({ merchant_id: c.id, day: addDays(today, -2) }).update({ payment_count: 1 });
    });

    it("today's rollup plus what came after it: a card that paid before the rollup's reach and pays again counts once", async () => {
      const before = (await get(`/v1/merchant/reports/daily?from=${today}&to=${today}`, a.key)).data[0]!;
      expect(before.distinct_cards).to.equal(2);
      // After the reach: both of today's cards pay again at A, and a new card pays; B sees the standard card for the second time too.
      const newcomer = (await createMember(sys)).cards[0]!;
      await payOk(a.key, standardA, '5.00', 'cash');
      await payOk(a.key, prepaidA, '6.00');
      await payOk(a.key, newcomer, '7.00', 'line_pay');
      await payOk(b.key, standardA, '8.00', 'cash');
      const row = (await get(`/v1/merchant/reports/daily?from=${today}&to=${today}`, a.key)).data[0]!;
      expect(row).to.deep.include({ payment_count: 6, payment_amount: '198.00', distinct_cards: 3 });
      expect(row.by_method).to.deep.equal({ balance: '106.00', cash: '55.00', credit_card: '30.00', line_pay: '7.00' });
      expect((await get(`/v1/reports/daily?from=${today}&to=${today}`, sys.adminKey)).data[0]).to.deep.include({ payment_count: 8, distinct_cards: 3 });
      for (const [path, scope, key] of [
        [`/v1/merchant/reports/daily?from=${today}&to=${today}`, { merchantId: a.id }, a.key],
        [`/v1/merchant/reports/daily?granularity=hour`, { merchantId: a.id }, a.key],
        [`/v1/reports/daily?from=${today}&to=${today}`, {}, sys.adminKey],
        [`/v1/reports/daily?granularity=hour`, {}, sys.adminKey],
      ] as const) {
        const report = await get(path, key);
        const periods = path.includes('hour') ? hoursOf(today) : [{ date: today }];
        expect(report.data, path).to.deep.equal(await expectedReport(sys.deps.db, TZ, scope, periods));
      }
      // Rolled up again (once the new rows are older than the grace), the same figures.
      await sleep(1_100);
      const again = await runReportRollup(sys.deps);
      expect(again.rolled).to.equal(1);
      expect((await get(`/v1/merchant/reports/daily?from=${today}&to=${today}`, a.key)).data[0]).to.deep.equal(row);
      expect((await get(`/v1/reports/daily?granularity=hour`, sys.adminKey)).data).to.deep.equal(await expectedReport(sys.deps.db, TZ, {}, hoursOf(today)));
    });

    it('runs again without changing anything (idempotent); two runs at once roll each day once between them', async () => {
      const before = await rolledRows();
      const quiet = await runReportRollup(sys.deps);
      expect(quiet.rolled).to.equal(0);
      expect(await rolledRows()).to.deep.equal(before);
      // From scratch, twice at once: the advisory lock lets one roll a day while the other waits, then finds it done.
      await sys.deps.db.transaction(async (trx) => {
        await trx('report_rollup_state').delete();
        await trx('report_hourly').delete();
        await trx('report_daily').delete();
      });
      const [one, two] = await Promise.all([runReportRollup(sys.deps), runReportRollup(sys.deps)]);
      expect(one.rolled + two.rolled).to.equal(5);
      expect(await rolledRows()).to.deep.equal(before);
    });

    it("a late refund counts on its own day: a closed day stays closed, today's refunds go up", async () => {
      const dayOfPayment = addDays(today, -3);
      const closed = (await get(`/v1/merchant/reports/daily?from=${dayOfPayment}&to=${today}`, c.key)).data;
      expectSucceeded(await refund(sys, c.key, { original_tx_no: moved.threeDaysAgo!, amount: '5.00' }), 'late refund');
      const now = (await get(`/v1/merchant/reports/daily?from=${dayOfPayment}&to=${today}`, c.key)).data;
      expect(now.slice(0, -1)).to.deep.equal(closed.slice(0, -1));
      expect(now.at(-1)).to.deep.include({ date: today, payment_count: 0, refund_count: 1, refund_amount: '5.00', net_amount: '-5.00' });
      expect(now).to.deep.equal(await expectedReport(sys.deps.db, TZ, { merchantId: c.id }, days(dayOfPayment, today)));
      // The rollup does not reopen the payment's day either.
      const dayRow = await sys.deps.db('report_daily').where({ merchant_id: c.id, day: dayOfPayment }).first('refund_count', 'rolled_at');
      await runReportRollup(sys.deps);
      expect(await sys.deps.db('report_daily').where({ merchant_id: c.id, day: dayOfPayment }).first('refund_count', 'rolled_at')).to.deep.equal(dayRow);
      expect((await get(`/v1/merchant/reports/daily?from=${dayOfPayment}&to=${today}`, c.key)).data).to.deep.equal(now);
    });

    it('a closed day of a merchant agrees with its settlement: settlement net = report net − fee', async () => {
      const day = addDays(today, -3);
      const run = await sys.http.post('/v1/settlements/run', { date: day, merchant_id: c.id }, { key: sys.adminKey });
      expect(run.status, run.text).to.equal(201);
      const settlement = run.body.data[0];
      const row = (await get(`/v1/merchant/reports/daily?from=${day}&to=${day}`, c.key)).data[0]!;
      expect(settlement.gross_amount).to.equal(row.payment_amount);
      expect(settlement.payment_count).to.equal(row.payment_count);
      expect(settlement.refund_amount).to.equal(row.refund_amount);
      expect(Math.round(Number(row.net_amount) * 100) - Math.round(Number(settlement.fee_amount) * 100)).to.equal(Math.round(Number(settlement.net_amount) * 100));
    });

    it('does not reach past a transaction still open: a decline it writes, committed after the rollup, is still counted', async () => {
      const trx = await sys.deps.db.transaction();
      let startedAt: Date;
      try {
        startedAt = (await trx.raw('SELECT now() AS t')).rows[0].t as Date;
        // A worker's batch, still open: its failed payment carries the batch's start as completed_at.
        await trx.raw(
          `INSERT INTO operations (id, type, status, principal, request_hash, api_key_id, actor_role, merchant_id, partition, amount_minor, error_code, error_message, completed_at)
           VALUES (?, 'payment', 'failed', 'test', 'x', ?, 'merchant', ?, 0, 100, 'CARD_NOT_ACTIVE', 'test', now())`,
          [`op_open_${randomBytes(6).toString('hex')}`, randomUuid(), a.id],
        );
        await sleep(1_200);
        const held = await runReportRollup(sys.deps);
        expect(held.stopped).to.equal('open-transaction');
        expect(Date.parse(held.rolled_until)).to.be.at.most(startedAt.getTime());
        expect(Date.parse(held.oldest_open!)).to.be.at.most(startedAt.getTime());
        await trx.commit();
      } catch (err) {
        await trx.rollback();
        throw err;
      }
      const row = (await get(`/v1/merchant/reports/daily?from=${today}&to=${today}`, a.key)).data[0]!;
      expect(row.declines).to.deep.equal({ CARD_NOT_ACTIVE: 1, INSUFFICIENT_BALANCE: 1, QR_EXPIRED_OR_INVALID: 1 });
      const after = await runReportRollup(sys.deps);
      expect(after).to.not.have.property('stopped');
      expect(Date.parse(after.rolled_until)).to.be.above(startedAt!.getTime());
      expect((await get(`/v1/merchant/reports/daily?from=${today}&to=${today}`, a.key)).data[0]).to.deep.equal(row);
      expect(await sys.deps.db('report_daily').where({ merchant_id: a.id, day: today }).first('declines')).to.deep.equal({ declines: row.declines });
      // The reach never passes now − REPORT_ROLLUP_GRACE_S.
      const limit = await rollupLimit(sys.deps.db, 86_400);
      expect(limit.limit_at.getTime()).to.be.below(Date.now() - 86_000_000);
    });

    it('a new SETTLEMENT_TZ starts the rollup over; until then that time zone reads live, and the old one does afterwards', async () => {
      const utc = await startSystem({ SETTLEMENT_TZ: 'UTC', REPORT_ROLLUP_GRACE_S: 1 }, { databaseUrl: database.url, workers: false });
      try {
        const utcToday = (await utc.deps.db.raw(`SELECT to_char((now() AT TIME ZONE 'UTC')::date, 'YYYY-MM-DD') AS d`)).rows[0].d as string;
        const path = `/v1/reports/daily?from=2026-03-01&to=${utcToday}`;
        const live = (await utc.http.get(path, { key: utc.adminKey })).body.data;
        expect(live).to.deep.equal(await expectedReport(utc.deps.db, 'UTC', {}, days('2026-03-01', utcToday)));
        await runReportRollup(utc.deps);
        expect(await utc.deps.db('report_rollup_state').first()).to.include({ time_zone: 'UTC' });
        // Rebuilt in UTC: 2026-03-09 now holds both of C's payments around Taipei's midnight.
        expect(await utc.deps.db('report_daily').where({ merchant_id: c.id, day: '2026-03-09' }).first('payment_count')).to.deep.equal({ payment_count: 2 });
        expect((await utc.http.get(path, { key: utc.adminKey })).body.data).to.deep.equal(live);
        // The Taipei system finds no rollup of its time zone: it aggregates live, still exact.
        const taipei = (await get(`/v1/reports/daily?from=2026-03-01&to=${today}`, sys.adminKey)).data;
        expect(taipei).to.deep.equal(await expectedReport(sys.deps.db, TZ, {}, days('2026-03-01', today)));
      } finally {
        await utc.stop();
      }
      // And back: Taipei's rollup is rebuilt from the transactions.
      const back = await runReportRollup(sys.deps);
      expect(back.rolled).to.equal(5);
      expect(await state()).to.include({ time_zone: TZ });
      expect((await get(`/v1/reports/daily?from=2026-03-01&to=${today}`, sys.adminKey)).data).to.deep.equal(await expectedReport(sys.deps.db, TZ, {}, days('2026-03-01', today)));
    });
  });
});

function randomUuid(): string {
  return globalThis.crypto.randomUUID();
}
