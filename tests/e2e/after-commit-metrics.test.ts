import { randomBytes } from 'node:crypto';
import { expect } from 'chai';
import { runCardOperation } from '../../jobs/index.js';
import { createMember, createMerchant, issueCard, memberToken } from '../helpers/fixtures.js';
import { charge, expectLedgersMatch, issueQr, recharge, type OperationJson } from '../helpers/money.js';
import { deleteQueued } from '../helpers/sql-rows.js';
import { startSystem, type TestSystem } from '../helpers/system.js';

/**
 * A charge's QR metrics (used, invalid) count once its batch commits: a batch that breaks and
 * runs again alone (operations/runner.ts) must not count the charges it had decided twice.
 */
describe('e2e: QR metrics of charges count after commit', function () {
  this.timeout(60_000);
  let sys: TestSystem;

  beforeEach(async () => {
    sys = await startSystem({ OPERATION_BATCH_MAX: 1000, QR_SINGLE_USE: true }, { workers: false });
  });
  afterEach(async () => {
    await sys.stop();
  });

  const accepted = async (res: Promise<{ status: number; body: OperationJson; text: string }>) => {
    const r = await res;
    expect(r.status, r.text).to.equal(202);
    return r.body.id;
  };
  const qrCount = async (event: string) => (await sys.deps.metrics.qrEvents.get()).values.find((v) => v.labels.event === event)?.value ?? 0;

  it('counts a used and an invalid QR once, though the batch that first decided them rolled back', async () => {
    const merchant = await createMerchant(sys);
    const owner = await createMember(sys);
    const card = await issueCard(sys, { type: 'prepaid', ownerMemberId: owner.id });
    const live = await issueQr(sys, card.id, await memberToken(sys, owner.id));
    const topUp = await accepted(recharge(sys, card.id, { amount: '100.00' }, { wait: false }));
    expect(await runCardOperation(sys.deps, { operationId: topUp })).to.deep.equal({ status: 'succeeded' });

    const trigger = `mps_test_fail_${randomBytes(4).toString('hex')}`;
    await sys.deps.db.raw(`CREATE FUNCTION ${trigger}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'injected test failure'; END $$`);
    await sys.deps.db.raw(`CREATE TRIGGER ${trigger} BEFORE INSERT ON transactions FOR EACH ROW WHEN (NEW.card_id = '${card.id}' AND NEW.raw_amount_minor = 4343) EXECUTE FUNCTION ${trigger}()`);
    let ids: string[] = [];
    try {
      ids = [
        await accepted(charge(sys, merchant.key, { qr: live, amount: '10.00' }, { wait: false })),
        // The same single-use QR again: accepted (it is live now), refused once the first has used it.
        await accepted(charge(sys, merchant.key, { qr: live, amount: '5.00' }, { wait: false })),
        // Breaks every batch it is in.
        await accepted(recharge(sys, card.id, { amount: '43.43' }, { wait: false })),
      ];
      const before = { used: await qrCount('used'), invalid: await qrCount('invalid') };
      // Each job's batch takes the breaking recharge along, rolls back, and runs its own operation again alone.
      expect(await runCardOperation(sys.deps, { operationId: ids[0]! })).to.deep.equal({ status: 'succeeded' });
      expect(await runCardOperation(sys.deps, { operationId: ids[1]! })).to.deep.equal({ status: 'failed' });
      const ops = new Map((await sys.deps.db('operations').whereIn('id', ids)).map((r) => [r.id as string, r]));
      expect(ids.map((id) => ops.get(id)!.error_code ?? ops.get(id)!.status)).to.deep.equal(['succeeded', 'QR_EXPIRED_OR_INVALID', 'queued']);
      expect({ used: (await qrCount('used')) - before.used, invalid: (await qrCount('invalid')) - before.invalid }).to.deep.equal({ used: 1, invalid: 1 });
      await expectLedgersMatch(sys, card.id, { balance: 9000 });
    } finally {
      await sys.deps.db.raw(`DROP TRIGGER IF EXISTS ${trigger} ON transactions`);
      await sys.deps.db.raw(`DROP FUNCTION IF EXISTS ${trigger}()`);
      await deleteQueued(sys.deps.db, ids); // the broken one
    }
  });
});
