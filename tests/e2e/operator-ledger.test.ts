import { randomBytes } from 'node:crypto';
import { expect } from 'chai';
import type { Knex } from 'knex';
import { createKnex, migrateLatest } from '../../db/knex.js';
import { createMember, createMerchant, issueCard } from '../helpers/fixtures.js';
import { runCli } from '../helpers/cli.js';
import { testEnv } from '../helpers/env.js';
import { chargeOk, expectLedgersMatch, expectSucceeded, issueQr, rechargeOk, refund } from '../helpers/money.js';
import { adjust, awaitOperation, decide, reverseRecharge, secondAdminKey, tillRecharge } from '../helpers/operator-money.js';
import { startSystem, type TestSystem } from '../helpers/system.js';

/**
 * `npm run cli -- verify-ledger` over every kind of balance movement (payment, refund, recharge by
 * card and at the till, adjustments both ways, one approved, and a recharge reversal), on a
 * database of its own so that it checks exactly these cards; then one card broken by hand is found.
 */
describe('e2e: verify-ledger with the operator money tools', function () {
  this.timeout(90_000);
  let admin: Knex;
  let dbName: string;
  let databaseUrl: string;
  let sys: TestSystem;

  before(async () => {
    admin = createKnex(testEnv.databaseUrl, 1, () => undefined);
    dbName = `mps_ledger_${randomBytes(4).toString('hex')}`;
    await admin.raw(`CREATE DATABASE ${dbName}`);
    databaseUrl = Object.assign(new URL(testEnv.databaseUrl), { pathname: `/${dbName}` }).toString();
    const migrator = createKnex(databaseUrl, 2, () => undefined);
    await migrateLatest(migrator);
    await migrator.destroy();
    sys = await startSystem({ ADJUSTMENT_APPROVAL_OVER: 10_000 }, { databaseUrl });
  });
  after(async () => {
    await sys?.stop();
    await admin.raw(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`);
    await admin.destroy();
  });

  it('balances = Σ balance_ledger for every card after every new ledger kind; a card changed by hand is reported', async () => {
    const shop = await createMerchant(sys);
    const member = await createMember(sys);
    const card = await issueCard(sys, { type: 'prepaid', ownerMemberId: member.id });
    const other = await issueCard(sys, { type: 'corporate', ownerMemberId: member.id });
    const rch = await rechargeOk(sys, card.id, '500.00');
    expectSucceeded(await tillRecharge(sys, shop.key, { qr: await issueQr(sys, card.id), amount: '200.00' }));
    const pay = await chargeOk(sys, shop.key, card.id, '120.00');
    expectSucceeded(await refund(sys, shop.key, { original_tx_no: pay.result!.tx_no, amount: '20.00' }));
    expectSucceeded(await adjust(sys, card.id, '-30.00'));
    const held = await adjust(sys, card.id, '150.00', { wait: false });
    expect((await decide(sys, held.body.id, 'approve', await secondAdminKey(sys))).status).to.equal(202);
    expectSucceeded(await awaitOperation(sys, held.body.id));
    expectSucceeded(await reverseRecharge(sys, card.id, { original_tx_no: rch.result!.tx_no, amount: '100.00' }));
    await rechargeOk(sys, other.id, '10.00');
    // 500 + 200 − 120 + 20 − 30 + 150 − 100
    await expectLedgersMatch(sys, card.id, { balance: 62_000 });
    const reasons = await sys.deps.db('balance_ledger').where({ card_id: card.id }).distinct('reason').pluck('reason');
    expect(reasons).to.have.members(['recharge', 'payment', 'refund', 'adjustment', 'recharge_reversal']);

    const ok = await runCli(['verify-ledger'], { DATABASE_URL: databaseUrl });
    expect(ok.code, ok.out).to.equal(0);
    expect(ok.out).to.match(/(\d+) cards checked, 0 mismatched\./);

    await sys.deps.db('member_cards').where({ id: other.id }).update({ balance_minor: 1_001 });
    const broken = await runCli(['verify-ledger'], { DATABASE_URL: databaseUrl });
    expect(broken.code, broken.out).to.equal(1);
    expect(broken.out).to.contain(`MISMATCH card ${other.card_no}: balance 1001 vs ledger 1000`);
    expect(broken.out).to.match(/cards checked, 1 mismatched\./);
  });
});
