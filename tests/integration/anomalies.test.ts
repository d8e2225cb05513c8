import { randomUUID } from 'node:crypto';
import { expect } from 'chai';
import { createMember, createMerchant } from '../helpers/fixtures.js';
import { clearOfWindowEdge, insertOperations, insertTransaction, metricValue } from '../helpers/sql-rows.js';
import { startSystem, type TestSystem } from '../helpers/system.js';
import { runDetectAnomalies } from '../../jobs/detect-anomalies.js';

/**
 * The anomaly rules of DESIGN.md "Risk": each fires on data made to trip it and stays quiet just
 * under its threshold. Operations rows are written with SQL (fast, and placed in time); payments
 * for the large-payment rule and QR validations go through the API. Detection scans the whole
 * shared database, so every assertion is about this file's own merchants and cards.
 */
describe('integration: anomaly detection', function () {
  this.timeout(60_000);
  let sys: TestSystem;

  const alertsOf = (subjectId: string) => sys.deps.db('risk_alerts').where({ subject_id: subjectId }).orderBy('rule');
  const rulesOf = async (subjectId: string) => (await alertsOf(subjectId)).map((a) => a.rule as string);
  const riskEvents = (subjectId: string) => sys.deps.db('events').where({ type: 'risk.alert' }).whereRaw(`data->>'subject_id' = ?`, [subjectId]);
  const newMerchant = async () => (await createMerchant(sys)).merchant.id;
  const ops = (merchantId: string, succeeded: number, failed: number, ageSeconds = 5) =>
    Promise.all([insertOperations(sys.deps.db, succeeded, { merchantId, status: 'succeeded', ageSeconds }), insertOperations(sys.deps.db, failed, { merchantId, status: 'failed', ageSeconds })]);

  /** Runs detection twice: the second run must raise nothing for anything the first raised. */
  async function detectTwice(subjects: string[]): Promise<void> {
    await runDetectAnomalies(sys.deps);
    const first = await Promise.all(subjects.map((s) => alertsOf(s)));
    await runDetectAnomalies(sys.deps);
    const second = await Promise.all(subjects.map((s) => alertsOf(s)));
    expect(second.map((rows) => rows.map((r) => r.id))).to.deep.equal(first.map((rows) => rows.map((r) => r.id)));
  }

  async function validateGarbage(key: string, n: number): Promise<void> {
    for (let i = 0; i < n; i++) {
      const res = await sys.http.post('/v1/qr/validate', { qr: `mpsq_garbage${i}_${randomUUID()}` }, { key });
      expect(res.status, JSON.stringify(res.body)).to.equal(200);
      expect(res.body.valid).to.equal(false);
    }
  }

  before(async () => {
    // LARGE_TX_ALERT is held in minor units: 100000 = 1,000.00.
    sys = await startSystem({ LARGE_TX_ALERT: 100_000 });
  });
  after(async () => {
    await sys.stop();
  });

  it('merchant failure rate: > 5 % of ≥ 20 attempts in the last hour fires; exactly 5 %, 19 attempts or older attempts stay quiet', async () => {
    await clearOfWindowEdge(3600, 15_000);
    const [m20f2, m20f1, m19f5, m19f11, mOld] = await Promise.all([newMerchant(), newMerchant(), newMerchant(), newMerchant(), newMerchant()]);
    await ops(m20f2, 18, 2); // 20 attempts, 10 % failed → fires
    await ops(m20f1, 19, 1); // 20 attempts, exactly 5 % → quiet (the rule is "> 5 %")
    await ops(m19f5, 14, 5); // 19 attempts, 26 % failed → too few attempts; 5 failed ≤ 10 → quiet
    await ops(m19f11, 8, 11); // 19 attempts: the rate rule does not apply, but 11 failed charges do
    await ops(mOld, 18, 2, 3700); // over an hour ago → outside the window
    await detectTwice([m20f2, m20f1, m19f5, m19f11, mOld]);

    const [alert] = await alertsOf(m20f2);
    expect(await rulesOf(m20f2)).to.deep.equal(['merchant_failure_rate']);
    expect(alert).to.include({ subject_type: 'merchant', severity: 'warning', status: 'open' });
    expect(alert.details).to.deep.equal({ attempts: 20, failed: 2, failure_rate: 0.1 });
    expect(alert.window_start.getTime() % 3_600_000).to.equal(0);
    expect(await rulesOf(m20f1)).to.deep.equal([]);
    expect(await rulesOf(m19f5)).to.deep.equal([]);
    expect(await rulesOf(m19f11)).to.deep.equal(['merchant_failed_charges']);
    expect(await rulesOf(mOld)).to.deep.equal([]);

    // Announced once as a platform risk.alert event (not in the merchant's own feed) naming the merchant, and audited.
    const events = await riskEvents(m20f2);
    expect(events).to.have.length(1);
    expect(events[0]).to.include({ merchant_id: null });
    expect(events[0].data).to.include({ merchant_id: m20f2 });
    expect(events[0].data).to.include({ alert_id: alert.id, rule: 'merchant_failure_rate', subject_type: 'merchant', subject_id: m20f2, severity: 'warning' });
    const audit = await sys.deps.db('audit_events').where({ action: 'risk.alert', object_id: m20f2 });
    expect(audit).to.have.length(1);
    expect(audit[0].context).to.include({ rule: 'merchant_failure_rate', alert_id: alert.id });
  });

  it('failed charges: 11 failed in an hour fires, 10 stay quiet (whatever the rate)', async () => {
    await clearOfWindowEdge(3600, 15_000);
    const [m11, m10, m30f10] = await Promise.all([newMerchant(), newMerchant(), newMerchant()]);
    await ops(m11, 0, 11); // 11 attempts: too few for the rate rule
    await ops(m10, 0, 10);
    await ops(m30f10, 20, 10); // 33 % of 30 → the rate rule fires, the count rule does not
    await detectTwice([m11, m10, m30f10]);

    const [alert] = await alertsOf(m11);
    expect(await rulesOf(m11)).to.deep.equal(['merchant_failed_charges']);
    expect(alert.details).to.deep.equal({ failed: 11 });
    expect(await rulesOf(m10)).to.deep.equal([]);
    expect(await rulesOf(m30f10)).to.deep.equal(['merchant_failure_rate']);
    expect(await riskEvents(m11)).to.have.length(1);
  });

  it('large payment: a payment of 1,000.01 over LARGE_TX_ALERT 1,000.00 fires, one of exactly 1,000.00 does not', async () => {
    const { merchant, key } = await createMerchant(sys);
    const pay = async (amount: string) => {
      const member = await createMember(sys);
      const qr = await sys.http.post(`/v1/cards/${member.cards[0]!.id}/qr`, {}, { key: sys.adminKey });
      expect(qr.status, JSON.stringify(qr.body)).to.equal(201);
      const res = await sys.http.post('/v1/payments', { qr: qr.body.qr_plain, amount, payment_method: 'cash' }, { key, headers: { 'idempotency-key': randomUUID(), prefer: 'wait=10' } });
      expect(res.status, JSON.stringify(res.body)).to.equal(200);
      expect(res.body.status, JSON.stringify(res.body)).to.equal('succeeded');
      expect(res.body.result.final_amount).to.equal(amount);
      return { txNo: res.body.result.tx_no as string, cardId: member.cards[0]!.id };
    };
    const over = await pay('1000.01');
    const at = await pay('1000.00');
    await detectTwice([over.txNo, at.txNo]);

    const alerts = await alertsOf(over.txNo);
    expect(alerts.map((a) => a.rule)).to.deep.equal(['large_payment']);
    expect(alerts[0]).to.include({ subject_type: 'transaction', severity: 'info', status: 'open' });
    expect(alerts[0].details).to.deep.equal({ card_id: over.cardId, final_amount: '1000.01', threshold: '1000.00' });
    expect(await alertsOf(at.txNo)).to.have.length(0);
    const events = await riskEvents(over.txNo);
    expect(events).to.have.length(1);
    expect(events[0].merchant_id).to.equal(null);
    expect(events[0].data.merchant_id).to.equal(merchant.id);
  });

  it('large payment: one payment is alerted once, even when detection runs in the next 10-minute window while it is still in the look-back', async () => {
    await clearOfWindowEdge(600, 15_000);
    const merchantId = await newMerchant();
    const member = await createMember(sys);
    const { rows } = await sys.deps.db.raw<{ rows: { s: number }[] }>(`SELECT extract(epoch FROM now())::float8 AS s`);
    const windowStartS = Math.floor(rows[0]!.s / 600) * 600;
    // Made 1 s before the current window began (so at most ~586 s ago: still inside the 600 s look-back) …
    const tx = await insertTransaction(sys.deps.db, { type: 'payment', merchantId, cardId: member.cards[0]!.id, finalMinor: 250_000, createdAt: new Date((windowStartS - 1) * 1000) });
    // … detected now, in this window, and again by later runs while it stays in the look-back.
    await runDetectAnomalies(sys.deps);
    await runDetectAnomalies(sys.deps);
    const alerts = await alertsOf(tx.txNo);
    expect(alerts.map((a) => a.window_start.toISOString()), 'one payment, one alert').to.have.length(1);
    // The alert is keyed on the payment itself, not on the window the detection ran in.
    expect(alerts[0].window_start.getTime()).to.equal((windowStartS - 1) * 1000);
    expect(await riskEvents(tx.txNo)).to.have.length(1);
  });

  it('card velocity: 6 charges on one card within a minute fire; 5, or 6 spread over two minutes, stay quiet', async () => {
    await clearOfWindowEdge(60, 15_000);
    const merchantId = await newMerchant();
    const [six, five, spread] = await Promise.all([createMember(sys), createMember(sys), createMember(sys)]);
    const cardOf = (m: typeof six) => m.cards[0]!.id;
    await insertOperations(sys.deps.db, 6, { merchantId, cardId: cardOf(six), status: 'succeeded', ageSeconds: 20 });
    await insertOperations(sys.deps.db, 5, { merchantId, cardId: cardOf(five), status: 'succeeded', ageSeconds: 20 });
    await insertOperations(sys.deps.db, 3, { merchantId, cardId: cardOf(spread), status: 'succeeded', ageSeconds: 20 });
    await insertOperations(sys.deps.db, 3, { merchantId, cardId: cardOf(spread), status: 'succeeded', ageSeconds: 90 });
    await detectTwice([cardOf(six), cardOf(five), cardOf(spread)]);

    const alerts = await alertsOf(cardOf(six));
    expect(alerts.map((a) => a.rule)).to.deep.equal(['card_velocity']);
    expect(alerts[0]).to.include({ subject_type: 'card', severity: 'warning' });
    expect(alerts[0].details).to.deep.equal({ charges: 6, window_s: 60 });
    expect(await alertsOf(cardOf(five))).to.have.length(0);
    expect(await alertsOf(cardOf(spread))).to.have.length(0);
    const events = await riskEvents(cardOf(six));
    expect(events).to.have.length(1);
    expect(events[0].merchant_id).to.equal(null);
  });

  it('invalid QR: 21 invalid validations from one merchant in 10 minutes fire (critical); 20 stay quiet; no auto-block by default', async () => {
    await clearOfWindowEdge(600, 20_000);
    const over = await createMerchant(sys);
    const at = await createMerchant(sys);
    await validateGarbage(over.key, 21);
    await validateGarbage(at.key, 20);
    await detectTwice([over.merchant.id, at.merchant.id]);

    const alerts = await alertsOf(over.merchant.id);
    expect(alerts.map((a) => a.rule)).to.deep.equal(['invalid_qr']);
    expect(alerts[0]).to.include({ subject_type: 'merchant', severity: 'critical' });
    expect(alerts[0].details).to.deep.equal({ invalid_attempts: 21, window_s: 600 });
    expect(await alertsOf(at.merchant.id)).to.have.length(0);
    // RISK_AUTO_BLOCK is false by default: the key keeps working.
    expect((await sys.deps.db('api_keys').where({ id: over.keyId }).first()).status).to.equal('active');
    expect((await sys.http.get('/v1/merchant/settlements', { key: over.key })).status).to.equal(200);
    const audit = await sys.deps.db('audit_events').where({ action: 'risk.alert', object_id: over.merchant.id });
    expect(audit.map((r) => r.context.keys_suspended)).to.deep.equal([0]);
  });

  it('invalid QR: 21 refused charges (QR_EXPIRED_OR_INVALID) within the last 10 minutes fire even when they fell just before the current fixed window', async () => {
    await clearOfWindowEdge(600, 15_000);
    const m = await newMerchant();
    const { rows } = await sys.deps.db.raw<{ rows: { s: number }[] }>(`SELECT extract(epoch FROM now())::float8 AS s`);
    const nowS = rows[0]!.s;
    const windowStartS = Math.floor(nowS / 600) * 600;
    // One second before the current 10-minute window began: at most 586 s ago (clear of the edge), so "in 10 minutes".
    const ageSeconds = nowS - windowStartS + 1;
    expect(ageSeconds).to.be.below(600);
    await insertOperations(sys.deps.db, 21, { merchantId: m, status: 'failed', errorCode: 'QR_EXPIRED_OR_INVALID', ageSeconds });
    await runDetectAnomalies(sys.deps);
    expect(await rulesOf(m)).to.include('invalid_qr');
  });

  it('alerts are counted in /metrics (mps_risk_alerts_total by rule), once per alert', async () => {
    await clearOfWindowEdge(3600, 15_000);
    const scrape = async () => {
      const res = await sys.http.get('/metrics');
      expect(res.status).to.equal(200);
      return res.text;
    };
    const rules = ['merchant_failure_rate', 'merchant_failed_charges', 'large_payment', 'card_velocity', 'invalid_qr'];
    const before = await scrape();
    const t0 = (await sys.deps.db.raw<{ rows: { now: Date }[] }>('SELECT now() AS now')).rows[0]!.now;
    const m = await newMerchant();
    await ops(m, 0, 25); // trips both merchant rules
    const first = await runDetectAnomalies(sys.deps);
    const second = await runDetectAnomalies(sys.deps);
    expect(first.raised).to.be.at.least(2);
    expect(second.raised).to.equal(0);
    const after = await scrape();
    for (const rule of rules) {
      const created = await sys.deps.db('risk_alerts').where({ rule }).andWhere('created_at', '>=', t0).count<{ n: number }[]>({ n: '*' });
      const delta = metricValue(after, 'mps_risk_alerts_total', { rule }) - metricValue(before, 'mps_risk_alerts_total', { rule });
      expect(delta, rule).to.equal(created[0]!.n);
    }
    expect(metricValue(after, 'mps_risk_alerts_total', { rule: 'merchant_failed_charges' })).to.be.at.least(1);
    expect(await rulesOf(m)).to.deep.equal(['merchant_failed_charges', 'merchant_failure_rate']);
  });

  it('admins list alerts and resolve each once (second resolve 409); a resolved alert is not raised again in its window', async () => {
    await clearOfWindowEdge(3600, 15_000);
    const m = await newMerchant();
    await ops(m, 0, 12);
    await runDetectAnomalies(sys.deps);
    const [alert] = await alertsOf(m);
    expect(alert).to.include({ rule: 'merchant_failed_charges', status: 'open' });

    const listed = await sys.http.get('/v1/risk/alerts?rule=merchant_failed_charges&status=open&limit=200', { key: sys.adminKey });
    expect(listed.status).to.equal(200);
    const shown = listed.body.data.find((a: { id: string }) => a.id === alert.id);
    expect(shown).to.include({ rule: 'merchant_failed_charges', subject_type: 'merchant', subject_id: m, status: 'open', resolved_at: null });
    expect(shown.window_start).to.equal(alert.window_start.toISOString());
    expect(listed.body.data.every((a: { rule: string; status: string }) => a.rule === 'merchant_failed_charges' && a.status === 'open')).to.equal(true);
    const paged = await sys.http.get('/v1/risk/alerts?limit=1', { key: sys.adminKey });
    expect(paged.body.data).to.have.length(1);
    expect(paged.body.next_cursor).to.be.a('string');
    const next = await sys.http.get(`/v1/risk/alerts?limit=1&cursor=${encodeURIComponent(paged.body.next_cursor)}`, { key: sys.adminKey });
    expect(next.body.data).to.have.length(1);
    expect(next.body.data[0].id).to.not.equal(paged.body.data[0].id);

    const resolved = await sys.http.post(`/v1/risk/alerts/${alert.id}/resolve`, { note: 'merchant called: terminal misconfigured' }, { key: sys.adminKey });
    expect(resolved.status, JSON.stringify(resolved.body)).to.equal(200);
    expect(resolved.body).to.include({ id: alert.id, status: 'resolved', resolution_note: 'merchant called: terminal misconfigured' });
    expect(resolved.body.resolved_at).to.be.a('string');
    const again = await sys.http.post(`/v1/risk/alerts/${alert.id}/resolve`, {}, { key: sys.adminKey });
    expect(again.status).to.equal(409);
    expect(again.body.error.code).to.equal('CONFLICT');
    expect((await sys.http.post(`/v1/risk/alerts/${randomUUID()}/resolve`, {}, { key: sys.adminKey })).status).to.equal(404);
    expect((await sys.http.post(`/v1/risk/alerts/${alert.id}/resolve`, { bogus: 1 }, { key: sys.adminKey })).status).to.equal(400);
    const { key: merchantKey } = await createMerchant(sys);
    expect((await sys.http.get('/v1/risk/alerts', { key: merchantKey })).status).to.equal(403);

    const resolvedList = await sys.http.get('/v1/risk/alerts?status=resolved&limit=200', { key: sys.adminKey });
    expect(resolvedList.body.data.map((a: { id: string }) => a.id)).to.include(alert.id);
    const audit = await sys.deps.db('audit_events').where({ action: 'risk.alert.resolve', object_id: alert.id });
    expect(audit).to.have.length(1);

    // Same rule, subject and window: still deduplicated after resolution.
    await runDetectAnomalies(sys.deps);
    expect((await alertsOf(m)).map((a) => a.id)).to.deep.equal([alert.id]);
  });

  describe('with RISK_AUTO_BLOCK=true', () => {
    let blocking: TestSystem;
    before(async () => {
      blocking = await startSystem({ RISK_AUTO_BLOCK: true }, { workers: false });
    });
    after(async () => {
      await blocking.stop();
    });

    it("suspends every key of a merchant with > 20 invalid QR attempts, which then get 401; a merchant with 20 keeps its key", async () => {
      await clearOfWindowEdge(600, 20_000);
      const bad = await createMerchant(blocking);
      const secondKey = await blocking.http.post(`/v1/merchants/${bad.merchant.id}/api-keys`, {}, { key: blocking.adminKey });
      expect(secondKey.status).to.equal(201);
      const fine = await createMerchant(blocking);
      for (const [key, n] of [
        [bad.key, 21],
        [fine.key, 20],
      ] as const) {
        for (let i = 0; i < n; i++) {
          const res = await blocking.http.post('/v1/qr/validate', { qr: `garbage-${randomUUID()}` }, { key });
          expect(res.body.valid).to.equal(false);
        }
      }
      await runDetectAnomalies(blocking.deps);

      const keys = await blocking.deps.db('api_keys').where({ merchant_id: bad.merchant.id }).orderBy('created_at');
      expect(keys.map((k) => k.status)).to.deep.equal(['suspended', 'suspended']);
      for (const key of [bad.key, secondKey.body.key as string]) {
        const res = await blocking.http.get('/v1/merchant/settlements', { key });
        expect(res.status).to.equal(401);
        expect(res.body.error.code).to.equal('UNAUTHENTICATED');
        expect((await blocking.http.post('/v1/qr/validate', { qr: 'x' }, { key })).status).to.equal(401);
      }
      expect((await blocking.deps.db('api_keys').where({ id: fine.keyId }).first()).status).to.equal('active');
      expect((await blocking.http.get('/v1/merchant/settlements', { key: fine.key })).status).to.equal(200);

      const [alert] = await blocking.deps.db('risk_alerts').where({ subject_id: bad.merchant.id });
      expect(alert).to.include({ rule: 'invalid_qr', severity: 'critical' });
      const audit = await blocking.deps.db('audit_events').where({ action: 'risk.alert', object_id: bad.merchant.id });
      expect(audit.map((r) => r.context.keys_suspended)).to.deep.equal([2]);
      expect(await blocking.deps.db('risk_alerts').where({ subject_id: fine.merchant.id })).to.have.length(0);
    });
  });
});
