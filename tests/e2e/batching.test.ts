import { randomBytes } from 'node:crypto';
import { expect } from 'chai';
import { runCardOperation } from '../../jobs/index.js';
import { verifyAuditChain } from '../../db/queries/audit-events.js';
import { bind, createMember, createMerchant, issueCard, memberToken } from '../helpers/fixtures.js';
import { charge, expectLedgersMatch, issueQr, recharge, type OperationJson } from '../helpers/money.js';
import { deleteQueued } from '../helpers/sql-rows.js';
import { startSystem, type TestSystem } from '../helpers/system.js';

/**
 * A partition's job applies the other operations queued on its partition in the same transaction
 * (operations/runner.ts). Without workers, operations are accepted and then one job is run by hand.
 */
describe('e2e: a job applies its partition’s queued operations as one batch', function () {
  this.timeout(60_000);
  let sys: TestSystem;

  beforeEach(async () => {
    // Room for operations other test files leave queued on the same partition.
    sys = await startSystem({ OPERATION_BATCH_MAX: 1000 }, { workers: false });
  });
  afterEach(async () => {
    await sys.stop();
  });

  /** A shared prepaid card and three members' QRs for it (each member has one live QR per card). */
  async function setup() {
    const merchant = await createMerchant(sys);
    const owner = await createMember(sys);
    const card = await issueCard(sys, { type: 'prepaid', ownerMemberId: owner.id });
    const tokens = [await memberToken(sys, owner.id)];
    for (let i = 0; i < 2; i++) {
      const token = await memberToken(sys, (await createMember(sys)).id);
      await bind(sys, { key: token, cardNo: card.card_no });
      tokens.push(token);
    }
    const qrs = await Promise.all(tokens.map((t) => issueQr(sys, card.id, t)));
    return { merchantKey: merchant.key, card, qrs };
  }

  const accepted = async (res: Promise<{ status: number; body: OperationJson; text: string }>) => {
    const r = await res;
    expect(r.status, r.text).to.equal(202);
    return r.body.id;
  };
  const rows = (ids: string[]) => sys.deps.db('operations').whereIn('id', ids);
  const byId = async (ids: string[]) => new Map((await rows(ids)).map((r) => [r.id as string, r]));

  it('in the order they were accepted, each with its own outcome, one commit, their jobs removed', async () => {
    const { merchantKey, card, qrs } = await setup();
    const ids = [
      await accepted(recharge(sys, card.id, { amount: '100.00' }, { wait: false })),
      await accepted(charge(sys, merchantKey, { qr: qrs[0]!, amount: '60.00' }, { wait: false })),
      // Refused: 40.00 is left when it runs (it would pass if run after the next recharge).
      await accepted(charge(sys, merchantKey, { qr: qrs[1]!, amount: '60.00' }, { wait: false })),
      await accepted(recharge(sys, card.id, { amount: '30.00' }, { wait: false })),
      // Passes only after that recharge: 70.00 is left then.
      await accepted(charge(sys, merchantKey, { qr: qrs[2]!, amount: '50.00' }, { wait: false })),
    ];
    const { partition } = await sys.deps.db('operations').where({ id: ids[0] }).first('partition');
    const queue = sys.deps.queues.partitions[partition]!;
    for (const id of ids) expect(await queue.getJob(id), id).to.not.equal(undefined);

    // The newest operation's job runs: it takes the older ones along, oldest first.
    expect(await runCardOperation(sys.deps, { operationId: ids[4]! })).to.deep.equal({ status: 'succeeded' });

    const ops = await byId(ids);
    expect(ids.map((id) => ops.get(id)!.error_code ?? ops.get(id)!.status)).to.deep.equal(['succeeded', 'succeeded', 'INSUFFICIENT_BALANCE', 'succeeded', 'succeeded']);
    // One transaction: they all end at its now().
    expect(new Set(ids.map((id) => ops.get(id)!.completed_at.toISOString())).size).to.equal(1);
    for (const id of ids) expect((await sys.deps.db('transactions').where({ operation_id: id })).length, id).to.equal(ops.get(id)!.status === 'succeeded' ? 1 : 0);
    const paid = [ids[1]!, ids[4]!].map((id) => Math.round(Number(ops.get(id)!.result.final_amount) * 100));
    await expectLedgersMatch(sys, card.id, { balance: 13_000 - paid[0]! - paid[1]! });

    // The jobs of the operations taken along are gone; the one that ran was never taken by a worker.
    for (const id of ids.slice(0, 4)) expect(await queue.getJob(id), id).to.equal(undefined);
    // Its leftover job (or a stalled copy) finds it done.
    expect(await runCardOperation(sys.deps, { operationId: ids[4]! })).to.deep.equal({ skipped: 'already terminal' });
    expect((await verifyAuditChain(sys.deps.db)).ok).to.equal(true);
    const audit = await sys.deps.db('audit_events').whereIn('object_id', [ids[2]!]).first();
    expect(audit).to.include({ action: 'payment.failed', chain: `card-ops-${partition}` });
  });

  it('an operation that breaks (not a business refusal) fails no other: each then runs alone', async () => {
    const { merchantKey, card, qrs } = await setup();
    const trigger = `mps_test_fail_${randomBytes(4).toString('hex')}`;
    await sys.deps.db.raw(`CREATE FUNCTION ${trigger}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'injected test failure'; END $$`);
    await sys.deps.db.raw(`CREATE TRIGGER ${trigger} BEFORE INSERT ON transactions FOR EACH ROW WHEN (NEW.card_id = '${card.id}' AND NEW.raw_amount_minor = 4343) EXECUTE FUNCTION ${trigger}()`);
    let ids: string[] = [];
    try {
      ids = [
        await accepted(recharge(sys, card.id, { amount: '100.00' }, { wait: false })),
        await accepted(charge(sys, merchantKey, { qr: qrs[0]!, amount: '43.43' }, { wait: false })),
        await accepted(recharge(sys, card.id, { amount: '10.00' }, { wait: false })),
      ];
      // The last one's batch breaks on the charge: it runs again alone and succeeds; the others stay queued.
      expect(await runCardOperation(sys.deps, { operationId: ids[2]! })).to.deep.equal({ status: 'succeeded' });
      let ops = await byId(ids);
      expect(ids.map((id) => ops.get(id)!.status)).to.deep.equal(['queued', 'queued', 'succeeded']);

      expect(await runCardOperation(sys.deps, { operationId: ids[0]! })).to.deep.equal({ status: 'succeeded' });
      // The broken one's own job fails (and is retried by BullMQ, then ends INTERNAL_ERROR: run-job.ts).
      let error: Error | undefined;
      await runCardOperation(sys.deps, { operationId: ids[1]! }).catch((err: Error) => (error = err));
      expect(error?.message).to.contain('injected test failure');
      ops = await byId(ids);
      // Its transaction rolled back: still queued, as if not yet taken (no commit marks an operation in hand).
      expect(ids.map((id) => ops.get(id)!.status)).to.deep.equal(['succeeded', 'queued', 'succeeded']);
      await expectLedgersMatch(sys, card.id, { balance: 11_000 });
    } finally {
      await sys.deps.db.raw(`DROP TRIGGER IF EXISTS ${trigger} ON transactions`);
      await sys.deps.db.raw(`DROP FUNCTION IF EXISTS ${trigger}()`);
      await deleteQueued(sys.deps.db, ids); // the broken one
    }
  });
});
