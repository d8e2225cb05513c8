import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { doctor } from '../../cli/doctor.js';
import { createKnex, migrateLatest } from '../../db/knex.js';
import { startPostgres } from '../../dev/stack.js';
import { createMember, createMerchant, issueCard } from '../helpers/fixtures.js';
import { chargeOk, getCard, rechargeOk, sleep } from '../helpers/money.js';
import { startReplica, type Replica } from '../helpers/replica.js';
import { startSystem, type TestSystem } from '../helpers/system.js';

/**
 * DATABASE_READ_URL against a real streaming hot standby of a primary of its own (embedded
 * Postgres in a temporary folder). Pausing the standby's replay shows which reads it serves: a
 * payment made meanwhile is in the primary's answers and missing from the standby's.
 */
describe('e2e: lists from a streaming read replica (DATABASE_READ_URL)', function () {
  this.timeout(90_000);
  let dir: string;
  let primary: Awaited<ReturnType<typeof startPostgres>>;
  let replica: Replica;
  let sys: TestSystem;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'mps-replica-'));
    primary = await startPostgres(join(dir, 'primary'), 'mps', false);
    const migrator = createKnex(primary.url, 1, () => undefined);
    await migrateLatest(migrator);
    await migrator.destroy();
    replica = await startReplica(primary.url, join(dir, 'primary'), join(dir, 'replica'));
    sys = await startSystem({ DATABASE_URL: primary.url, DATABASE_READ_URL: replica.url });
  });
  after(async () => {
    await sys?.stop();
    await replica?.stop();
    await primary?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  const inRecovery = async (k: TestSystem['deps']['db']) => (await k.raw<{ rows: { r: boolean }[] }>('SELECT pg_is_in_recovery() AS r')).rows[0]!.r;
  const merchantTxNos = async (key: string) => {
    const res = await sys.http.get('/v1/merchant/transactions', { key });
    expect(res.status, res.text).to.equal(200);
    return (res.body.data as { tx_no: string }[]).map((t) => t.tx_no);
  };
  const cardTxNos = async (cardId: string) => {
    const res = await sys.http.get(`/v1/cards/${cardId}/transactions`, { key: sys.adminKey });
    expect(res.status, res.text).to.equal(200);
    return (res.body.data as { tx_no: string }[]).map((t) => t.tx_no);
  };
  const until = async (what: string, done: () => Promise<boolean>) => {
    for (let tries = 0; !(await done()); tries++) {
      if (tries > 100) throw new Error(`timed out: ${what}`);
      await sleep(100);
    }
  };

  it('deps.dbRead is the standby and deps.db the primary; without DATABASE_READ_URL they are one pool', async () => {
    expect(await inRecovery(sys.deps.dbRead)).to.equal(true);
    expect(await inRecovery(sys.deps.db)).to.equal(false);
    const [standby] = await replica.query<{ status: string }>('SELECT status FROM pg_stat_wal_receiver');
    expect(standby?.status).to.equal('streaming');
    const check = (await doctor(sys.deps)).find((c) => c.name === 'read replica');
    expect(check).to.include({ level: 'ok' });
    expect(check!.detail).to.match(/^standby; last replayed commit/);
    const plain = await startSystem({ DATABASE_URL: primary.url }, { workers: false });
    try {
      expect(plain.deps.dbRead).to.equal(plain.deps.db);
    } finally {
      await plain.stop();
    }
  });

  it('lists trail the primary while replay is paused; the operation, the card and the money path do not', async () => {
    const merchant = await createMerchant(sys);
    const member = await createMember(sys);
    const card = await issueCard(sys, { type: 'prepaid', ownerMemberId: member.id });
    await rechargeOk(sys, card.id, '100.00');
    const first = await chargeOk(sys, merchant.key, card.id, '10.00');
    await until('the standby shows the first payment', async () => (await merchantTxNos(merchant.key)).includes(String(first.result!.tx_no)));

    await replica.query('SELECT pg_wal_replay_pause()');
    await until('replay paused', async () => (await replica.query<{ s: string }>('SELECT pg_get_wal_replay_pause_state() AS s'))[0]!.s === 'paused');
    try {
      const second = await chargeOk(sys, merchant.key, card.id, '20.00');
      const secondTx = String(second.result!.tx_no);
      // Reads that must see the caller's own write are on the primary.
      const op = await sys.http.get(`/v1/operations/${second.id}`, { key: merchant.key });
      expect(op.body).to.include({ status: 'succeeded' });
      expect(await getCard(sys, card.id)).to.include({ balance: '70.00' });
      // The lists come from the paused standby: the second payment is not there yet.
      expect(await merchantTxNos(merchant.key)).to.deep.equal([String(first.result!.tx_no)]);
      expect(await cardTxNos(card.id)).to.not.include(secondTx);
      const onPrimary = await sys.deps.db('transactions').where({ tx_no: secondTx }).first('id');
      expect(onPrimary, 'committed on the primary').to.not.equal(undefined);
    } finally {
      await replica.query('SELECT pg_wal_replay_resume()');
    }
    await until('the standby catches up', async () => (await merchantTxNos(merchant.key)).length === 2);
    expect(await cardTxNos(card.id)).to.have.length(3);
  });
});
