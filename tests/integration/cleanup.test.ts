import { randomUUID } from 'node:crypto';
import { expect } from 'chai';
import { createMember, createMerchant, issueCard } from '../helpers/fixtures.js';
import { deleteQueued, hex, insertOperation, insertTransaction, metricValue } from '../helpers/sql-rows.js';
import { startSystem, type TestSystem } from '../helpers/system.js';
import { runCleanup } from '../../jobs/cleanup.js';
import { runRotateQr } from '../../jobs/rotate-qr.js';
import { sha256 } from '../../domain/tokens.js';

const ago = (sql: string) => `now() - interval '${sql}'`;

/**
 * Retention (DESIGN.md "QR tokens", "Idempotency", "Webhooks", "Risk", "Audit"): the weekly cleanup
 * removes only what is past its retention and never touches the financial record. Retention
 * settings are given small on purpose, so a hard-coded default in the job would show.
 */
describe('integration: cleanup job (retention)', function () {
  this.timeout(60_000);
  let sys: TestSystem;

  before(async () => {
    sys = await startSystem({ QR_HISTORY_DAYS: 10, IDEMPOTENCY_TTL_H: 24, WEBHOOK_RETENTION_DAYS: 5, ALERT_RETENTION_DAYS: 7 });
  });
  after(async () => {
    await sys.stop();
  });

  it('removes only rows past retention: ended QR history, idempotency keys (operation kept), resolved alerts, finished webhook deliveries', async () => {
    const { db } = sys.deps;
    const { merchant } = await createMerchant(sys);
    const member = await createMember(sys);
    const cardId = member.cards[0]!.id;

    // QR history (QR_HISTORY_DAYS = 10): only ended rows issued more than 10 days ago go.
    const qr = async (issued: string, endReason: string | null) => {
      const [row] = await db('card_qr_history')
        .insert({ card_id: cardId, member_id: member.id, token_hash: hex(32), issued_at: db.raw(ago(issued)), expires_at: db.raw(`${ago(issued)} + interval '15 minutes'`), end_reason: endReason })
        .returning('id');
      return (row as { id: number }).id;
    };
    const qrOldUsed = await qr('11 days', 'used');
    const qrOldRevoked = await qr('11 days', 'revoked');
    const qrYoungEnded = await qr('9 days', 'expired');
    const qrOldOpen = await qr('11 days', null);

    // Idempotency keys (IDEMPOTENCY_TTL_H = 24): released on finished operations older than 24 h.
    const opOld = await insertOperation(db, { merchantId: merchant.id, status: 'succeeded', idempotencyKey: `k-${randomUUID()}`, createdAtSql: ago('25 hours') });
    const opOldFailed = await insertOperation(db, { merchantId: merchant.id, status: 'failed', idempotencyKey: `k-${randomUUID()}`, createdAtSql: ago('25 hours') });
    const opYoung = await insertOperation(db, { merchantId: merchant.id, status: 'succeeded', idempotencyKey: `k-${randomUUID()}`, createdAtSql: ago('23 hours') });
    const opOldQueued = await insertOperation(db, { merchantId: merchant.id, status: 'queued', idempotencyKey: `k-${randomUUID()}`, createdAtSql: ago('25 hours') });
    const opBefore = await db('operations').where({ id: opOld }).first();

    // Risk alerts (ALERT_RETENTION_DAYS = 7): resolved ones resolved more than 7 days ago go; open ones stay.
    const alert = async (status: 'open' | 'resolved', created: string, resolved: string | null) => {
      const [row] = await db('risk_alerts')
        .insert({ rule: 'cleanup_test', subject_type: 'merchant', subject_id: randomUUID(), window_start: db.raw(ago(created)), status, created_at: db.raw(ago(created)), resolved_at: resolved ? db.raw(ago(resolved)) : null })
        .returning('id');
      return (row as { id: string }).id;
    };
    const alertOldResolved = await alert('resolved', '30 days', '8 days');
    const alertYoungResolved = await alert('resolved', '30 days', '6 days');
    const alertOldOpen = await alert('open', '30 days', null);

    // Webhook deliveries (WEBHOOK_RETENTION_DAYS = 5): finished ones older than 5 days go.
    const [endpoint] = await db('webhook_endpoints').insert({ merchant_id: merchant.id, url: 'https://example.test/hook', events: ['payment.succeeded'], secret_enc: 'x' }).returning('id');
    const delivery = async (status: string, created: string) => {
      const [row] = await db('webhook_deliveries')
        .insert({ endpoint_id: (endpoint as { id: string }).id, event_id: `evt_${hex(16)}`, status, created_at: db.raw(ago(created)) })
        .returning('id');
      return (row as { id: string }).id;
    };
    const dOldDelivered = await delivery('delivered', '6 days');
    const dOldFailed = await delivery('failed', '6 days');
    const dYoungDelivered = await delivery('delivered', '4 days');
    const dOldPending = await delivery('pending', '6 days');

    const { removed } = await runCleanup(sys.deps);
    expect(removed.qrHistory).to.be.at.least(2);
    expect(removed.idempotencyKeys).to.be.at.least(2);
    expect(removed.resolvedAlerts).to.be.at.least(1);
    expect(removed.webhookDeliveries).to.be.at.least(2);

    const qrLeft = (await db('card_qr_history').whereIn('id', [qrOldUsed, qrOldRevoked, qrYoungEnded, qrOldOpen]).pluck('id')).map(Number);
    expect(qrLeft.sort((x, y) => x - y)).to.deep.equal([qrYoungEnded, qrOldOpen].map(Number).sort((x, y) => x - y));

    const opsAfter = await db('operations').whereIn('id', [opOld, opOldFailed, opYoung, opOldQueued]);
    expect(opsAfter).to.have.length(4); // the operation rows stay
    const keyOf = (id: string) => opsAfter.find((o) => o.id === id)!.idempotency_key;
    expect(keyOf(opOld)).to.equal(null);
    expect(keyOf(opOldFailed)).to.equal(null);
    expect(keyOf(opYoung)).to.be.a('string');
    expect(keyOf(opOldQueued)).to.be.a('string'); // still in flight
    await deleteQueued(db, [opOldQueued]);
    const opAfter = opsAfter.find((o) => o.id === opOld)!;
    expect({ ...opAfter, idempotency_key: opBefore.idempotency_key }).to.deep.equal(opBefore);

    expect((await db('risk_alerts').whereIn('id', [alertOldResolved, alertYoungResolved, alertOldOpen]).pluck('id')).sort()).to.deep.equal([alertYoungResolved, alertOldOpen].sort());
    expect((await db('webhook_deliveries').whereIn('id', [dOldDelivered, dOldFailed, dYoungDelivered, dOldPending]).pluck('id')).sort()).to.deep.equal([dYoungDelivered, dOldPending].sort());

    // A second run finds nothing more of ours.
    await runCleanup(sys.deps);
    expect(await db('card_qr_history').whereIn('id', [qrYoungEnded, qrOldOpen])).to.have.length(2);
    expect(await db('risk_alerts').whereIn('id', [alertYoungResolved, alertOldOpen])).to.have.length(2);
  });

  it('never touches transactions, balance_ledger, point_ledger or audit_events, however old', async () => {
    const { db } = sys.deps;
    const { merchant } = await createMerchant(sys);
    const member = await createMember(sys);
    const prepaid = await issueCard(sys, { type: 'prepaid', ownerMemberId: member.id });
    const standardId = member.cards[0]!.id;
    const threeYears = new Date(Date.now() - 3 * 365 * 86_400_000);
    // A recharge of 5.00 and a payment earning 10 points, three years old, with their ledger rows; the
    // cards are set to match their ledgers so that the ledger checks of other tests still hold.
    const rch = await insertTransaction(db, { type: 'recharge', merchantId: null, cardId: prepaid.id, memberId: member.id, finalMinor: 500, createdAt: threeYears });
    await db('balance_ledger').insert({ card_id: prepaid.id, transaction_id: rch.id, delta_minor: 500, balance_after_minor: 500, reason: 'recharge', created_at: threeYears });
    await db('member_cards').where({ id: prepaid.id }).update({ balance_minor: 500 });
    const pay = await insertTransaction(db, { type: 'payment', merchantId: merchant.id, cardId: standardId, memberId: member.id, finalMinor: 1000, createdAt: threeYears });
    await db('point_ledger').insert({ card_id: standardId, transaction_id: pay.id, delta: 10, points_after: 10, reason: 'earn', created_at: threeYears });
    await db('member_cards').where({ id: standardId }).update({ points: 10 });

    const counts = async () => {
      const out: Record<string, number> = {};
      for (const table of ['transactions', 'balance_ledger', 'point_ledger', 'audit_events', 'operations']) {
        const [row] = await db(table).count<{ n: number }[]>({ n: '*' });
        out[table] = row!.n;
      }
      const [audit] = await db('audit_events').max<{ id: number }[]>({ id: 'id' });
      out.audit_max_id = audit!.id;
      return out;
    };
    const before = await counts();
    await runCleanup(sys.deps);
    expect(await counts()).to.deep.equal(before);
    expect(await db('transactions').whereIn('id', [rch.id, pay.id])).to.have.length(2);
    expect(await db('balance_ledger').where({ transaction_id: rch.id })).to.have.length(1);
    expect(await db('point_ledger').where({ transaction_id: pay.id })).to.have.length(1);
  });

  it('an idempotency key released after IDEMPOTENCY_TTL_H can be used again: a new operation, not the old one', async () => {
    const { key } = await createMerchant(sys);
    const member = await createMember(sys);
    const payWith = async (idempotencyKey: string) => {
      const qr = await sys.http.post(`/v1/cards/${member.cards[0]!.id}/qr`, {}, { key: sys.adminKey });
      expect(qr.status).to.equal(201);
      return sys.http.post('/v1/payments', { qr: qr.body.qr_plain, amount: '10.00', payment_method: 'cash' }, { key, headers: { 'idempotency-key': idempotencyKey, prefer: 'wait=10' } });
    };
    const idem = `reuse-${randomUUID()}`;
    const first = await payWith(idem);
    expect(first.status, JSON.stringify(first.body)).to.equal(200);
    expect(first.body.status).to.equal('succeeded');
    // Within the TTL the key is bound to its request: another QR is another request → 409.
    const reused = await payWith(idem);
    expect(reused.status).to.equal(409);
    expect(reused.body.error.code).to.equal('IDEMPOTENCY_KEY_REUSED');

    await sys.deps.db('operations').where({ id: first.body.id }).update({ created_at: sys.deps.db.raw(ago('25 hours')) });
    await runCleanup(sys.deps);
    const second = await payWith(idem);
    expect(second.status, JSON.stringify(second.body)).to.equal(200);
    expect(second.body.status).to.equal('succeeded');
    expect(second.body.id).to.not.equal(first.body.id);
    const old = await sys.deps.db('operations').where({ id: first.body.id }).first();
    expect(old).to.include({ status: 'succeeded', idempotency_key: null });
  });
});

describe('integration: QR rotation job', function () {
  this.timeout(60_000);
  let sys: TestSystem;
  let merchantKey: string;

  before(async () => {
    sys = await startSystem({ SHARED_QR_TTL_S: 300 }, { workers: false });
    merchantKey = (await createMerchant(sys)).key;
  });
  after(async () => {
    await sys.stop();
  });

  const issue = async (cardId: string) => {
    const res = await sys.http.post(`/v1/cards/${cardId}/qr`, { ttl_seconds: 900 }, { key: sys.adminKey });
    expect(res.status, JSON.stringify(res.body)).to.equal(201);
    return { plain: res.body.qr_plain as string, hash: sha256(res.body.qr_plain as string) };
  };
  const backdate = async (hash: string, issuedSecondsAgo: number, expiresSecondsFromNow?: number) => {
    const changes: Record<string, unknown> = { issued_at: sys.deps.db.raw(`now() - make_interval(secs => ?)`, [issuedSecondsAgo]) };
    if (expiresSecondsFromNow !== undefined) changes.expires_at = sys.deps.db.raw(`now() + make_interval(secs => ?)`, [expiresSecondsFromNow]);
    expect(await sys.deps.db('card_qr_state').where({ token_hash: hash }).update(changes)).to.equal(1);
    await sys.deps.db('card_qr_history').where({ token_hash: hash }).update(changes);
  };
  const validate = async (plain: string) => {
    const res = await sys.http.post('/v1/qr/validate', { qr: plain }, { key: merchantKey });
    expect(res.status).to.equal(200);
    return res.body.valid as boolean;
  };

  it('expires shared-card tokens older than SHARED_QR_TTL_S, keeps younger ones and standard ones, and purges every token past expires_at', async () => {
    const owner = await createMember(sys);
    const prepaidOld = await issueCard(sys, { type: 'prepaid', ownerMemberId: owner.id });
    const prepaidYoung = await issueCard(sys, { type: 'prepaid', ownerMemberId: owner.id });
    const corporateOld = await issueCard(sys, { type: 'corporate', ownerMemberId: owner.id, fixedDiscount: '0.900' });
    const standardOwner = await createMember(sys);
    const standardExpired = await createMember(sys);

    const tPrepaidOld = await issue(prepaidOld.id);
    const tPrepaidYoung = await issue(prepaidYoung.id);
    const tCorporateOld = await issue(corporateOld.id);
    const tStandardOld = await issue(standardOwner.cards[0]!.id);
    const tStandardExpired = await issue(standardExpired.cards[0]!.id);
    await backdate(tPrepaidOld.hash, 301);
    await backdate(tPrepaidYoung.hash, 200);
    await backdate(tCorporateOld.hash, 301);
    await backdate(tStandardOld.hash, 600); // a personal QR lives its full TTL (900 s)
    await backdate(tStandardExpired.hash, 901, -1);
    for (const t of [tPrepaidOld, tPrepaidYoung, tCorporateOld, tStandardOld]) expect(await validate(t.plain)).to.equal(true);
    expect(await validate(tStandardExpired.plain)).to.equal(false);

    const metricsBefore = (await sys.http.get('/metrics')).text;
    const { expired } = await runRotateQr(sys.deps);
    expect(expired).to.be.at.least(3);
    const metricsAfter = (await sys.http.get('/metrics')).text;
    expect(metricValue(metricsAfter, 'mps_qr_events_total', { event: 'expired' }) - metricValue(metricsBefore, 'mps_qr_events_total', { event: 'expired' })).to.equal(expired);

    const live = await sys.deps.db('card_qr_state').whereIn('token_hash', [tPrepaidOld, tPrepaidYoung, tCorporateOld, tStandardOld, tStandardExpired].map((t) => t.hash)).pluck('token_hash');
    expect(live.sort()).to.deep.equal([tPrepaidYoung.hash, tStandardOld.hash].sort());
    const history = await sys.deps.db('card_qr_history').whereIn('token_hash', [tPrepaidOld, tPrepaidYoung, tCorporateOld, tStandardOld, tStandardExpired].map((t) => t.hash));
    const reason = (t: { hash: string }) => history.find((h) => h.token_hash === t.hash)!.end_reason;
    expect(reason(tPrepaidOld)).to.equal('expired');
    expect(reason(tCorporateOld)).to.equal('expired');
    expect(reason(tStandardExpired)).to.equal('expired');
    expect(reason(tPrepaidYoung)).to.equal(null);
    expect(reason(tStandardOld)).to.equal(null);

    expect(await validate(tPrepaidOld.plain)).to.equal(false);
    expect(await validate(tCorporateOld.plain)).to.equal(false);
    expect(await validate(tPrepaidYoung.plain)).to.equal(true);
    expect(await validate(tStandardOld.plain)).to.equal(true);

    // Nothing left to expire among ours: a second run leaves the kept tokens alone.
    await runRotateQr(sys.deps);
    expect(await sys.deps.db('card_qr_state').whereIn('token_hash', [tPrepaidYoung.hash, tStandardOld.hash])).to.have.length(2);
  });
});
