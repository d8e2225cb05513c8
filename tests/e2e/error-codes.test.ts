import { randomBytes } from 'node:crypto';
import { expect } from 'chai';
import { TERMINAL_OPERATION_CODES } from '../../domain/errors.js';
import { bind, countRows, createMember, createMerchant, issueCard, memberToken, memberWithToken } from '../helpers/fixtures.js';
import type { HttpResult } from '../helpers/http.js';
import {
  charge,
  chargeOk,
  expectError,
  expectFailed,
  expectLedgersMatch,
  expectSucceeded,
  issueQr,
  recharge,
  rechargeOk,
  refund,
  sleep,
  type OperationJson,
} from '../helpers/money.js';
import { startSystem, type TestSystem } from '../helpers/system.js';
import { startWorkers } from '../../workers/main.js';
import { createApiKey } from '../../db/queries/api-keys.js';
import { runCardOperation } from '../../jobs/index.js';
import { closeCard, replaceCard, transfer } from '../helpers/card-ops.js';

/**
 * Every terminal business error code of API.md, each produced through the HTTP API, and each
 * shown to have changed nothing (no transaction for the operation, ledgers unchanged).
 */
describe('e2e: terminal error codes', function () {
  this.timeout(60_000);
  let sys: TestSystem;
  let merchantKey: string;
  let merchantId: string;
  const seen = new Set<string>();

  before(async () => {
    sys = await startSystem();
    const m = await createMerchant(sys);
    merchantKey = m.key;
    merchantId = m.merchant.id;
  });
  after(async () => {
    await sys.stop();
  });

  /** Asserts the failure, that the operation wrote no transaction, and records the code as covered. */
  async function failsWith(res: HttpResult<OperationJson>, code: string, s: TestSystem = sys): Promise<OperationJson> {
    const op = expectFailed(res, code);
    expect(await s.deps.db('transactions').where({ operation_id: op.id })).to.have.length(0);
    const row = await s.deps.db('operations').where({ id: op.id }).first();
    expect(row).to.include({ status: 'failed', error_code: code });
    expect(row.completed_at).to.be.instanceOf(Date);
    seen.add(code);
    return op;
  }

  async function fundedCard(amount = '100.00', type: 'prepaid' | 'corporate' = 'prepaid') {
    const member = await createMember(sys);
    const card = await issueCard(sys, { type, ownerMemberId: member.id });
    await rechargeOk(sys, card.id, amount);
    return { member, card };
  }

  it('INSUFFICIENT_BALANCE', async () => {
    const { card } = await fundedCard('10.00');
    const op = await failsWith(await charge(sys, merchantKey, { qr: await issueQr(sys, card.id), amount: '10.01' }), 'INSUFFICIENT_BALANCE');
    expect(op.error!.message).to.be.a('string').and.not.equal('');
    await expectLedgersMatch(sys, card.id, { balance: 1_000, points: 0 });
  });

  it('QR_EXPIRED_OR_INVALID: an unknown QR', async () => {
    const qr = `mpsq_${randomBytes(32).toString('base64url')}`;
    await failsWith(await charge(sys, merchantKey, { qr, amount: '1.00' }), 'QR_EXPIRED_OR_INVALID');
  });

  it('QR_EXPIRED_OR_INVALID: an expired QR (expires_at moved into the past)', async () => {
    const { card } = await fundedCard();
    const qr = await issueQr(sys, card.id);
    await sys.deps.db('card_qr_state').where({ card_id: card.id }).update({ expires_at: sys.deps.db.raw(`now() - interval '1 second'`) });
    expect((await sys.http.post('/v1/qr/validate', { qr }, { key: merchantKey })).body.valid).to.equal(false);
    await failsWith(await charge(sys, merchantKey, { qr, amount: '1.00' }), 'QR_EXPIRED_OR_INVALID');
    await expectLedgersMatch(sys, card.id, { balance: 10_000, points: 0 });
  });

  it('QR_EXPIRED_OR_INVALID: the QR of a member who was unbound since', async () => {
    const { card } = await fundedCard();
    const m = await createMember(sys);
    const token = await memberToken(sys, m.id);
    await bind(sys, { key: token, cardNo: card.card_no });
    const qr = await issueQr(sys, card.id, token);
    expect((await sys.http.delete(`/v1/cards/${card.id}/bindings/${m.id}`, { key: token })).status).to.equal(200);
    await failsWith(await charge(sys, merchantKey, { qr, amount: '1.00' }), 'QR_EXPIRED_OR_INVALID');
  });

  it('CARD_NOT_ACTIVE: card frozen while a charge of it waits in the queue; recharging a frozen card too', async () => {
    const { card } = await fundedCard();
    const qr = await issueQr(sys, card.id);
    // Freezing ends the card's QR codes, so only a charge accepted before the freeze meets the frozen card.
    const idle = await startSystem({}, { workers: false });
    try {
      const queued = await charge(idle, merchantKey, { qr, amount: '1.00' }, { wait: false });
      expect(queued.status, queued.text).to.equal(202);
      await idle.deps.db('member_cards').where({ id: card.id }).update({ status: 'frozen' });
      const workers = await startWorkers(idle.deps);
      try {
        await failsWith(await idle.http.get<OperationJson>(`/v1/operations/${queued.body.id}`, { key: merchantKey, headers: { prefer: 'wait=10' } }), 'CARD_NOT_ACTIVE', idle);
      } finally {
        await workers.close();
      }
    } finally {
      await idle.stop();
    }
    await failsWith(await recharge(sys, card.id, { amount: '1.00' }), 'CARD_NOT_ACTIVE');
    await expectLedgersMatch(sys, card.id, { balance: 10_000 });
  });

  it('CARD_EXPIRED: card expires after its QR was issued; recharging it too', async () => {
    const { card } = await fundedCard();
    const qr = await issueQr(sys, card.id);
    await sys.deps.db('member_cards').where({ id: card.id }).update({ expires_at: sys.deps.db.raw(`now() - interval '1 second'`) });
    await failsWith(await charge(sys, merchantKey, { qr, amount: '1.00' }), 'CARD_EXPIRED');
    await failsWith(await recharge(sys, card.id, { amount: '1.00' }), 'CARD_EXPIRED');
    await expectLedgersMatch(sys, card.id, { balance: 10_000 });
  });

  it('VOUCHER_ALREADY_USED (QR_SINGLE_USE=false, so the used voucher’s QR is still live)', async () => {
    const sysV = await startSystem({ QR_SINGLE_USE: false });
    try {
      const m = await createMerchant(sysV);
      const member = await createMember(sysV);
      const voucher = await issueCard(sysV, { type: 'voucher', ownerMemberId: member.id, faceValue: '50.00' });
      const qr = await issueQr(sysV, voucher.id);
      expectSucceeded(await charge(sysV, m.key, { qr, amount: '20.00' }));
      await failsWith(await charge(sysV, m.key, { qr, amount: '20.00' }), 'VOUCHER_ALREADY_USED', sysV);
      await expectLedgersMatch(sysV, voucher.id, { balance: 3_000 });
    } finally {
      await sysV.stop();
    }
  });

  it('MEMBER_SUSPENDED: the paying member, the owner of a shared card, and a recharge', async () => {
    const { member, card } = await fundedCard();
    const family = await createMember(sys);
    const familyToken = await memberToken(sys, family.id);
    await bind(sys, { key: familyToken, cardNo: card.card_no });
    const ownerQr = await issueQr(sys, card.id);
    const familyQr = await issueQr(sys, card.id, familyToken);

    expect((await sys.http.post(`/v1/members/${member.id}/suspend`, { reason: 'fraud check' }, { key: sys.adminKey })).status).to.equal(200);
    await failsWith(await charge(sys, merchantKey, { qr: ownerQr, amount: '1.00' }), 'MEMBER_SUSPENDED');
    // The payer is active, but the card's owner is not.
    await failsWith(await charge(sys, merchantKey, { qr: familyQr, amount: '1.00' }), 'MEMBER_SUSPENDED');
    await failsWith(await recharge(sys, card.id, { amount: '1.00' }), 'MEMBER_SUSPENDED');

    expect((await sys.http.post(`/v1/members/${member.id}/reactivate`, {}, { key: sys.adminKey })).status).to.equal(200);
    expect((await sys.http.post(`/v1/members/${family.id}/suspend`, {}, { key: sys.adminKey })).status).to.equal(200);
    await failsWith(await charge(sys, merchantKey, { qr: familyQr, amount: '1.00' }), 'MEMBER_SUSPENDED');
    expectSucceeded(await charge(sys, merchantKey, { qr: ownerQr, amount: '1.00' }));
    await expectLedgersMatch(sys, card.id, { balance: 9_900, points: 1 });
  });

  it('MERCHANT_SUSPENDED: a suspended merchant’s key is refused 403 on a charge; one accepted before the suspension fails with it', async () => {
    const m = await createMerchant(sys);
    const { card } = await fundedCard();
    const qr = await issueQr(sys, card.id);
    expect((await sys.http.post(`/v1/merchants/${m.merchant.id}/suspend`, {}, { key: sys.adminKey })).status).to.equal(200);
    expectError(await charge(sys, m.key, { qr, amount: '1.00' }), 403, 'MERCHANT_SUSPENDED');
    expect(await countRows(sys, 'operations', { merchant_id: m.merchant.id })).to.equal(0);
    expect((await sys.http.post(`/v1/merchants/${m.merchant.id}/reactivate`, {}, { key: sys.adminKey })).status).to.equal(200);

    // Accepted while active, applied after the suspension: the worker refuses it under the lock.
    const idle = await startSystem({}, { workers: false });
    try {
      const queued = await charge(idle, m.key, { qr, amount: '1.00' }, { wait: false });
      expect(queued.status, queued.text).to.equal(202);
      expect((await idle.http.post(`/v1/merchants/${m.merchant.id}/suspend`, {}, { key: idle.adminKey })).status).to.equal(200);
      const workers = await startWorkers(idle.deps);
      try {
        await failsWith(await idle.http.get<OperationJson>(`/v1/operations/${queued.body.id}`, { key: m.key, headers: { prefer: 'wait=10' } }), 'MERCHANT_SUSPENDED', idle);
      } finally {
        await workers.close();
      }
      expect((await idle.http.post(`/v1/merchants/${m.merchant.id}/reactivate`, {}, { key: idle.adminKey })).status).to.equal(200);
    } finally {
      await idle.stop();
    }
    // The QR was not consumed by the refusals.
    expectSucceeded(await charge(sys, m.key, { qr, amount: '1.00' }));
  });

  it('LIMIT_EXCEEDED: a payment over the card’s single_payment_limit (details.limit names it)', async () => {
    const { card } = await fundedCard('100.00');
    expect((await sys.http.put(`/v1/cards/${card.id}/limits`, { single_payment_limit: '20.00' }, { key: sys.adminKey })).status).to.equal(200);
    const op = await failsWith(await charge(sys, merchantKey, { qr: await issueQr(sys, card.id), amount: '20.01' }), 'LIMIT_EXCEEDED');
    expect(op.error!.message).to.contain('20.00');
    await expectLedgersMatch(sys, card.id, { balance: 10_000, points: 0 });
  });

  it('APPROVAL_REJECTED: an adjustment above ADJUSTMENT_APPROVAL_OVER rejected by a second admin key ends `rejected`', async () => {
    const { card } = await fundedCard('10.00');
    const approver = (await createApiKey(sys.deps.db, { role: 'admin', name: 'approver' })).key;
    const held = await sys.http.post<OperationJson>(`/v1/cards/${card.id}/adjustments`, { amount: '1000.01', reason: 'test' }, { key: sys.adminKey, headers: { 'idempotency-key': `adj-${randomBytes(4).toString('hex')}` } });
    expect(held.status, held.text).to.equal(202);
    expect(held.body.status).to.equal('requires_approval');
    const res = await sys.http.post<OperationJson>(`/v1/operations/${held.body.id}/reject`, {}, { key: approver });
    expect(res.status, res.text).to.equal(200);
    expect(res.body).to.include({ status: 'rejected' });
    expect(res.body.error!.code).to.equal('APPROVAL_REJECTED');
    const row = await sys.deps.db('operations').where({ id: held.body.id }).first();
    expect(row).to.include({ status: 'rejected', error_code: 'APPROVAL_REJECTED' });
    expect(row.completed_at).to.be.instanceOf(Date);
    expect(await sys.deps.db('transactions').where({ operation_id: held.body.id })).to.have.length(0);
    seen.add('APPROVAL_REJECTED');
    await expectLedgersMatch(sys, card.id, { balance: 1_000 });
  });

  it('PAYMENT_METHOD_REQUIRED', async () => {
    const { token, standardCard } = await memberWithToken(sys);
    await failsWith(await charge(sys, merchantKey, { qr: await issueQr(sys, standardCard.id, token), amount: '5.00' }), 'PAYMENT_METHOD_REQUIRED');
    await expectLedgersMatch(sys, standardCard.id, { balance: 0, points: 0 });
  });

  it('RECHARGE_NOT_ALLOWED: a standard card and a voucher', async () => {
    const { member, standardCard } = await memberWithToken(sys);
    await failsWith(await recharge(sys, standardCard.id, { amount: '5.00' }), 'RECHARGE_NOT_ALLOWED');
    const voucher = await issueCard(sys, { type: 'voucher', ownerMemberId: member.id, faceValue: '5.00' });
    await failsWith(await recharge(sys, voucher.id, { amount: '5.00' }), 'RECHARGE_NOT_ALLOWED');
    await expectLedgersMatch(sys, voucher.id, { balance: 500 });
    await expectLedgersMatch(sys, standardCard.id, { balance: 0 });
  });

  it('BALANCE_LIMIT_EXCEEDED (MAX_BALANCE 100.00); over MAX_RECHARGE is 400 AMOUNT_INVALID', async () => {
    const sysB = await startSystem({ MAX_BALANCE: 10_000, MAX_RECHARGE: 8_000 });
    try {
      const member = await createMember(sysB);
      const card = await issueCard(sysB, { type: 'corporate', ownerMemberId: member.id });
      expectSucceeded(await recharge(sysB, card.id, { amount: '60.00' }));
      await failsWith(await recharge(sysB, card.id, { amount: '40.01' }), 'BALANCE_LIMIT_EXCEEDED', sysB);
      // Exactly up to the limit is fine.
      expectSucceeded(await recharge(sysB, card.id, { amount: '40.00' }));
      const before = await countRows(sysB, 'operations', { card_id: card.id });
      expectError(await recharge(sysB, card.id, { amount: '80.01' }), 400, 'AMOUNT_INVALID');
      expect(await countRows(sysB, 'operations', { card_id: card.id })).to.equal(before);
      await expectLedgersMatch(sysB, card.id, { balance: 10_000 });
    } finally {
      await sysB.stop();
    }
  });

  it('ORIGINAL_TX_NOT_FOUND (a REF… number), REFUND_EXCEEDS_AVAILABLE, REFUND_WINDOW_EXPIRED', async () => {
    const { card } = await fundedCard();
    const pay = await chargeOk(sys, merchantKey, card.id, '20.00');
    const ref = expectSucceeded(await refund(sys, merchantKey, { original_tx_no: pay.result!.tx_no, amount: '5.00' }));
    await failsWith(await refund(sys, merchantKey, { original_tx_no: ref.result!.refund_tx_no, amount: '1.00' }), 'ORIGINAL_TX_NOT_FOUND');
    await failsWith(await refund(sys, merchantKey, { original_tx_no: pay.result!.tx_no, amount: '15.01' }), 'REFUND_EXCEEDS_AVAILABLE');
    await sys.deps.db('transactions').where({ tx_no: pay.result!.tx_no }).update({ created_at: sys.deps.db.raw(`now() - interval '181 days'`) });
    await failsWith(await refund(sys, merchantKey, { original_tx_no: pay.result!.tx_no, amount: '1.00' }), 'REFUND_WINDOW_EXPIRED');
    await expectLedgersMatch(sys, card.id, { balance: 8_500, points: 15 });
  });

  describe('INTERNAL_ERROR and retries (a trigger makes the point_ledger insert of one card throw)', () => {
    const fn = `test_fail_points_${randomBytes(4).toString('hex')}`;
    async function breakPoints(s: TestSystem, cardId: string) {
      await s.deps.db.raw(`CREATE FUNCTION ${fn}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'test: point_ledger is unavailable'; END $$`);
      await s.deps.db.raw(`CREATE TRIGGER ${fn} BEFORE INSERT ON point_ledger FOR EACH ROW WHEN (NEW.card_id = '${cardId}'::uuid) EXECUTE FUNCTION ${fn}()`);
    }
    async function repairPoints(s: TestSystem) {
      await s.deps.db.raw(`DROP TRIGGER IF EXISTS ${fn} ON point_ledger`);
      await s.deps.db.raw(`DROP FUNCTION IF EXISTS ${fn}()`);
    }

    it('INTERNAL_ERROR after the last attempt (JOB_ATTEMPTS 1): nothing applied, QR not consumed', async () => {
      const sysI = await startSystem({ JOB_ATTEMPTS: 1 });
      try {
        const m = await createMerchant(sysI);
        const member = await createMember(sysI);
        const card = await issueCard(sysI, { type: 'prepaid', ownerMemberId: member.id });
        expectSucceeded(await recharge(sysI, card.id, { amount: '100.00' }));
        const qr = await issueQr(sysI, card.id);
        await breakPoints(sysI, card.id);
        try {
          const op = await failsWith(await charge(sysI, m.key, { qr, amount: '10.00' }), 'INTERNAL_ERROR', sysI);
          expect(op.error!.message).to.not.match(/point_ledger|test:/, 'no internal detail leaks into the error');
        } finally {
          await repairPoints(sysI);
        }
        await expectLedgersMatch(sysI, card.id, { balance: 10_000, points: 0 });
        expect(await sysI.deps.db('card_qr_state').where({ card_id: card.id })).to.have.length(1);
        // The card works again once the database does.
        expectSucceeded(await charge(sysI, m.key, { qr, amount: '10.00' }));
        await expectLedgersMatch(sysI, card.id, { balance: 9_000, points: 10 });
      } finally {
        await sysI.stop();
      }
    });

    it('an infrastructure error is retried with backoff and the operation then succeeds once', async () => {
      const { card } = await fundedCard('100.00');
      const qr = await issueQr(sys, card.id);
      await breakPoints(sys, card.id);
      let op: OperationJson;
      try {
        const res = await charge(sys, merchantKey, { qr, amount: '10.00' }, { wait: false });
        expect(res.status).to.equal(202);
        op = res.body;
        const { partition } = await sys.deps.db('operations').where({ id: op.id }).first('partition');
        // Wait until at least one attempt has failed.
        const deadline = Date.now() + 10_000;
        for (;;) {
          const job = await sys.deps.queues.partitions[partition]!.getJob(op.id);
          if ((job?.attemptsMade ?? 0) >= 1) break;
          if (Date.now() > deadline) throw new Error('no attempt failed');
          await sleep(20);
        }
        // Its transaction rolled back: still queued, the failed attempt counted.
        const tried = await sys.deps.db('operations').where({ id: op.id }).first('status', 'attempts');
        expect(tried.status).to.equal('queued');
        expect(tried.attempts).to.be.at.least(1);
      } finally {
        await repairPoints(sys);
      }
      const done = await sys.http.get<OperationJson>(`/v1/operations/${op.id}`, { key: merchantKey, headers: { prefer: 'wait=15' } });
      expectSucceeded(done);
      const row = await sys.deps.db('operations').where({ id: op.id }).first();
      expect(row.attempts).to.be.at.least(2);
      expect(await sys.deps.db('transactions').where({ operation_id: op.id })).to.have.length(1);
      await expectLedgersMatch(sys, card.id, { balance: 9_000, points: 10 });
    });
  });

  it('PAYMENT_REFERENCE_USED: a second payout with one reference; TRANSFER_IN_PROGRESS: closing a card whose transfer has not ended', async () => {
    const { card: first } = await fundedCard('10.00');
    const { card: second } = await fundedCard('20.00');
    const reference = `wire-${randomBytes(4).toString('hex')}`;
    expectSucceeded(await closeCard(sys, first.id, { payout_reference: reference }));
    await failsWith(await closeCard(sys, second.id, { payout_reference: reference }), 'PAYMENT_REFERENCE_USED');
    await expectLedgersMatch(sys, second.id, { balance: 2_000 });

    // Driven job by job (no workers, no batches: a job would take the queued legs along), to stand between a transfer's debit and its credit.
    const manual = await startSystem({ OPERATION_BATCH_MAX: 1 }, { workers: false });
    try {
      const owner = await createMember(manual);
      const [from, to] = [await issueCard(manual, { type: 'prepaid', ownerMemberId: owner.id }), await issueCard(manual, { type: 'prepaid', ownerMemberId: owner.id })];
      const run = async (res: HttpResult<OperationJson>) => {
        expect(res.status, res.text).to.equal(202);
        await runCardOperation(manual.deps, { operationId: res.body.id });
        return manual.http.get<OperationJson>(`/v1/operations/${res.body.id}`, { key: manual.adminKey });
      };
      expectSucceeded(await run(await recharge(manual, from.id, { amount: '50.00' }, { wait: false })));
      const moving = await transfer(manual, { from_card_id: from.id, to_card_id: to.id, amount: '5.00' }, { wait: false });
      expect((await run(moving)).body.status).to.equal('processing');
      await failsWith(await run(await closeCard(manual, from.id, {}, { wait: false })), 'TRANSFER_IN_PROGRESS', manual);
      await failsWith(await run(await replaceCard(manual, from.id, 'lost', { wait: false })), 'TRANSFER_IN_PROGRESS', manual);
      for (const leg of ['credit', 'end']) await runCardOperation(manual.deps, { operationId: `${moving.body.id}-${leg}` });
      expectSucceeded(await manual.http.get<OperationJson>(`/v1/operations/${moving.body.id}`, { key: manual.adminKey }));
      await expectLedgersMatch(manual, from.id, { balance: 4_500 });
    } finally {
      await manual.stop();
    }
  });

  it('AMOUNT_INVALID: 0, -1, "1.234", 1.234, "1e3", "abc", "", over MAX_AMOUNT → 400 and nothing recorded', async () => {
    const { card } = await fundedCard();
    const qr = await issueQr(sys, card.id);
    const opsBefore = await countRows(sys, 'operations', { merchant_id: merchantId });
    const rchBefore = await countRows(sys, 'operations', { card_id: card.id });
    const bad = [0, -1, '0', '0.00', '-1', '1.234', 1.234, '1e3', '1E3', 'abc', '', ' 1', '1.', '.5', '01', 'NaN', 'Infinity', '1000000.01', 1_000_000.01, 0.1 + 0.2];
    for (const amount of bad) {
      expectError(await charge(sys, merchantKey, { qr, amount }), 400, 'AMOUNT_INVALID');
      expectError(await recharge(sys, card.id, { amount }), 400, 'AMOUNT_INVALID');
    }
    expectError(await refund(sys, merchantKey, { original_tx_no: 'PAY0', amount: '0' }), 400, 'AMOUNT_INVALID');
    expect(await countRows(sys, 'operations', { merchant_id: merchantId })).to.equal(opsBefore);
    expect(await countRows(sys, 'operations', { card_id: card.id })).to.equal(rchBefore);
    // The largest allowed amount is accepted (and fails on balance, not on validation).
    expectFailed(await charge(sys, merchantKey, { qr, amount: '1000000.00' }), 'INSUFFICIENT_BALANCE');
    await expectLedgersMatch(sys, card.id, { balance: 10_000 });
  });

  // A describe of its own, so that it runs after the nested describe above.
  describe('coverage', () => {
    it('every terminal business code of API.md was produced above', () => {
      expect([...seen].sort()).to.deep.equal([...TERMINAL_OPERATION_CODES].sort());
    });
  });
});
