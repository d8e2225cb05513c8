import { randomBytes } from 'node:crypto';
import { expect } from 'chai';
import type { Knex } from 'knex';
import { doctor } from '../../cli/doctor.js';
import { createKnex, prepared } from '../../db/knex.js';
import { createAppKey, createMember, createMerchant, issueCard } from '../helpers/fixtures.js';
import { charge, expectLedgersMatch, expectSucceeded, getCard, issueQr, rechargeOk, refund } from '../helpers/money.js';
import { startPgBouncer, type PgBouncer } from '../helpers/pgbouncer.js';
import { startSystem, type TestSystem } from '../helpers/system.js';
import { testEnv } from '../helpers/env.js';

const ROLE_TIMEOUT_MS = 2000;

/**
 * The engine through Debian's PgBouncer (1.18) in transaction mode, the pooler that refused its
 * connections and mixed up its prepared statements. `mps` may hold 3 server connections for the
 * app's 10 (so transactions of different clients share server connections); `mps_single` holds one.
 */
describe('e2e: through PgBouncer in transaction mode', function () {
  this.timeout(60_000);
  const role = `mps_pgb_${randomBytes(4).toString('hex')}`;
  const password = randomBytes(12).toString('hex');
  let admin: Knex;
  let bouncer: PgBouncer;
  let sys: TestSystem | undefined;
  const extra: Knex[] = [];
  const knexVia = (database: string, options: Parameters<typeof createKnex>[3]) => {
    const k = createKnex(bouncer.url(database), 1, () => undefined, options);
    extra.push(k);
    return k;
  };

  before(async () => {
    admin = createKnex(testEnv.databaseUrl, 1, () => undefined);
    // The server-side timeout comes from the role, as README says to set it behind PgBouncer.
    await admin.raw(`CREATE ROLE ${role} LOGIN SUPERUSER PASSWORD '${password}'`);
    await admin.raw(`ALTER ROLE ${role} SET statement_timeout = '${ROLE_TIMEOUT_MS}ms'`);
    bouncer = await startPgBouncer({ upstream: new URL(testEnv.databaseUrl), user: role, password, databases: { mps: 3, mps_single: 1 } });
  });
  after(async () => {
    await sys?.stop();
    await Promise.all(extra.map((k) => k.destroy()));
    await bouncer?.stop();
    await admin.raw(`DROP ROLE IF EXISTS ${role}`);
    await admin.destroy();
  });

  it('refuses a statement_timeout startup parameter, which DATABASE_POOLER=pgbouncer no longer sends', async () => {
    const direct = knexVia('mps', { queryTimeoutMs: 5000 });
    let refused: Error | undefined;
    await direct.raw('SELECT 1').catch((err: Error) => (refused = err));
    expect(refused?.message).to.match(/unsupported startup parameter: statement_timeout/);

    const pooled = knexVia('mps', { queryTimeoutMs: 5000, pgbouncer: true });
    const { rows } = await pooled.raw<{ rows: { statement_timeout: string }[] }>('SHOW statement_timeout');
    expect(rows[0]!.statement_timeout).to.equal('2s');
  });

  it('a named statement is lost between clients sharing a server connection; DB_PREPARED_STATEMENTS=false drops the names', async () => {
    const query = (k: Knex) => prepared(k.raw<{ rows: { n: number }[] }>('SELECT 41 + ?::int AS n', [1]));
    const [a, b] = [knexVia('mps_single', { pgbouncer: true }), knexVia('mps_single', { pgbouncer: true })];
    expect((await query(a)).rows[0]!.n).to.equal(42);
    // b prepares the same name again, on the one server connection that already has it.
    const clash = await query(b).then(
      () => undefined,
      (err: { code?: string }) => err,
    );
    expect(clash?.code).to.equal('42P05');

    const [c, d] = [knexVia('mps_single', { pgbouncer: true, preparedStatements: false }), knexVia('mps_single', { pgbouncer: true, preparedStatements: false })];
    for (const k of [c, d, c, d]) expect((await query(k)).rows[0]!.n).to.equal(42);
  });

  it('the role statement_timeout cancels a slow query in Postgres itself', async () => {
    const pooled = knexVia('mps', { queryTimeoutMs: 8000, pgbouncer: true });
    const started = Date.now();
    const err = await pooled.raw('SELECT pg_sleep(5)').then(
      () => undefined,
      (e: { code?: string }) => e,
    );
    // 57014 is Postgres cancelling the statement, not the client giving up (that would be "Query read timeout").
    expect(err?.code).to.equal('57014');
    expect(Date.now() - started).to.be.within(ROLE_TIMEOUT_MS - 100, 4500);
  });

  it('money flow: member, prepaid card, admin recharge, QR, payment (Prefer: wait), refund; balances = Σ ledger', async () => {
    sys = await startSystem({ DATABASE_URL: bouncer.url('mps'), DATABASE_POOLER: 'pgbouncer', DB_POOL_MAX: 10 });
    const { rows } = await sys.deps.db.raw<{ rows: { user: string }[] }>('SELECT current_user AS user');
    expect(rows[0]!.user, 'the app connects as the pooled role').to.equal(role);
    expect(new URL(sys.config.DATABASE_URL!).port).to.equal(String(bouncer.port));
    const health = (await doctor(sys.deps)).find((c) => c.name === 'postgres')!;
    expect(health, 'doctor sees the role timeout through the pooler').to.include({ level: 'ok' });
    expect(health.detail).to.contain('statement_timeout=2s');

    const merchant = await createMerchant(sys);
    const appKey = await createAppKey(sys);
    const member = await createMember(sys);
    const card = await issueCard(sys, { type: 'prepaid', ownerMemberId: member.id, key: appKey });
    await rechargeOk(sys, card.id, '1000.00');
    // Several cards at once, so transactions of different app connections share the 3 server connections.
    const others = await Promise.all([1, 2, 3, 4].map(() => issueCard(sys!, { type: 'prepaid', ownerMemberId: member.id, key: appKey })));
    await Promise.all(others.map((c) => rechargeOk(sys!, c.id, '50.00')));

    const qr = await issueQr(sys, card.id);
    const paid = expectSucceeded(await charge(sys, merchant.key, { qr, amount: '299.00' }, { wait: 10 }), 'payment');
    expect(paid.result).to.include({ final_amount: '299.00' });
    const concurrent = await Promise.all(others.map(async (c) => charge(sys!, merchant.key, { qr: await issueQr(sys!, c.id), amount: '20.00' })));
    concurrent.forEach((res) => expectSucceeded(res, 'concurrent payment'));

    const refunded = expectSucceeded(await refund(sys, merchant.key, { original_tx_no: String(paid.result!.tx_no), amount: '99.00' }), 'refund');
    expect(refunded.result).to.include({ amount: '99.00' });
    expect(await getCard(sys, card.id)).to.include({ balance: '800.00' });
    await expectLedgersMatch(sys, card.id, { balance: 80_000 });
    for (const c of others) await expectLedgersMatch(sys, c.id, { balance: 3_000 });
    const stuck = await sys.deps.db('operations').whereIn('status', ['queued', 'processing']).whereIn('card_id', [card.id, ...others.map((c) => c.id)]);
    expect(stuck).to.have.length(0);
  });
});
