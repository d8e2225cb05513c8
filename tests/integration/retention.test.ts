import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { GENESIS_HASH, chainHash, type AuditFields } from '../../domain/audit-chain.js';
import { appendAudit, linkHolds, verifyAuditChain, type AuditRow } from '../../db/queries/audit-events.js';
import { runCleanup } from '../../jobs/cleanup.js';
import type { Db } from '../../db/knex.js';
import { createMember, createMerchant } from '../helpers/fixtures.js';
import { deleteQueued, hex, insertOperation, insertTransaction } from '../helpers/sql-rows.js';
import { startSystem, type TestSystem } from '../helpers/system.js';

const ago = (sql: string) => `now() - interval '${sql}'`;

/**
 * Audit events `yearsAgo` old at the start of a new chain, hashed as the application hashes them
 * (the hash covers created_at, so old events cannot be made by backdating appended ones), and the
 * chain's head after them, so that appendAudit links the next event to the last of these.
 */
async function seedOldChain(db: Db, chain: string, count: number, yearsAgo: number): Promise<AuditRow[]> {
  const { rows } = await db.raw<{ rows: { id: number; at: Date }[] }>(
    `SELECT nextval('audit_events_id_seq')::bigint AS id, date_trunc('milliseconds', now() - make_interval(years => ?)) + make_interval(secs => g) AS at
       FROM generate_series(1, ?) g ORDER BY g`,
    [yearsAgo, count],
  );
  const events: AuditRow[] = [];
  let prev = GENESIS_HASH;
  for (const [i, { id, at }] of rows.entries()) {
    const fields: AuditFields = { id, chain, actor_type: 'system', actor_id: null, role: null, action: 'test.old', object_type: 'test', object_id: String(i), context: { i }, request_id: null, ip: null, created_at: at.toISOString() };
    const hash = chainHash(prev, fields);
    events.push({ ...fields, created_at: at, prev_hash: prev, hash });
    prev = hash;
  }
  await db('audit_events').insert(events.map((e) => ({ ...e, context: JSON.stringify(e.context) })));
  await db('audit_chain_heads').insert({ chain, last_id: events.at(-1)!.id, hash: prev });
  return events;
}

const appendYoung = async (db: Db, chain: string, action: string) => {
  await db.transaction((trx) => appendAudit(trx, { chain, actorType: 'system', action, objectType: 'test' }));
  return db<AuditRow>('audit_events').where({ chain, action }).first() as Promise<AuditRow>;
};

/**
 * Retention beyond the weekly basics of cleanup.test.ts: batches with a commit each, the time budget,
 * failed operations and outbox events, and audit events archived behind checkpoints that keep the
 * chains verifiable. Retention settings are small so that rows can be placed past them.
 */
describe('integration: retention in batches', function () {
  this.timeout(60_000);
  let sys: TestSystem;
  let archiveDir: string;

  before(async () => {
    archiveDir = mkdtempSync(join(tmpdir(), 'mps-audit-archive-'));
    sys = await startSystem({ OPERATION_RETENTION_DAYS: 30, OUTBOX_RETENTION_DAYS: 10, WEBHOOK_RETENTION_DAYS: 5, CLEANUP_BATCH_SIZE: 2, CLEANUP_BATCH_PAUSE_MS: 0, AUDIT_ARCHIVE_DIR: archiveDir }, { workers: false });
  });
  after(async () => {
    await sys.stop();
    rmSync(archiveDir, { recursive: true, force: true });
  });

  it('removes failed operations past OPERATION_RETENTION_DAYS and events relayed past OUTBOX_RETENTION_DAYS, a few rows per statement; succeeded operations and their transactions stay', async () => {
    const { db } = sys.deps;
    const { merchant } = await createMerchant(sys);
    const member = await createMember(sys);
    const oldFailed = await Promise.all(Array.from({ length: 5 }, () => insertOperation(db, { merchantId: merchant.id, status: 'failed', createdAtSql: ago('31 days') })));
    const youngFailed = await insertOperation(db, { merchantId: merchant.id, status: 'failed', createdAtSql: ago('29 days') });
    const oldQueued = await insertOperation(db, { merchantId: merchant.id, status: 'queued', createdAtSql: ago('31 days') });
    const paid = await insertTransaction(db, { type: 'payment', merchantId: merchant.id, cardId: member.cards[0]!.id, memberId: member.id, finalMinor: 100, createdAt: new Date(Date.now() - 400 * 86_400_000) });

    const event = async (relayed: string | null, created = '40 days') => {
      const id = `evt_${hex(16)}`;
      await db('events').insert({ id, merchant_id: merchant.id, type: 'payment.succeeded', data: '{}', created_at: db.raw(ago(created)), relayed_at: relayed ? db.raw(ago(relayed)) : null });
      return id;
    };
    const oldRelayed = [await event('11 days'), await event('12 days'), await event('13 days')];
    const youngRelayed = await event('9 days');
    const neverRelayed = await event(null);

    const report = await runCleanup(sys.deps);
    expect(report.finished).to.equal(true);
    expect(report.removed.failedOperations).to.be.at.least(5);
    expect(report.removed.outboxEvents).to.be.at.least(3);
    // CLEANUP_BATCH_SIZE = 2: five rows take three statements at least, each its own commit.
    expect(report.steps.failedOperations!.batches).to.be.at.least(3);
    expect(report.steps.outboxEvents!.batches).to.be.at.least(2);
    expect(report.steps.failedOperations!.longestMs).to.be.a('number');

    const opsLeft = await db('operations').whereIn('id', [...oldFailed, youngFailed, oldQueued, paid.operationId]).pluck('id');
    expect(opsLeft.sort()).to.deep.equal([youngFailed, oldQueued, paid.operationId].sort());
    await deleteQueued(db, [oldQueued]);
    expect(await db('transactions').where({ id: paid.id })).to.have.length(1);
    const eventsLeft = await db('events').whereIn('id', [...oldRelayed, youngRelayed, neverRelayed]).pluck('id');
    expect(eventsLeft.sort()).to.deep.equal([youngRelayed, neverRelayed].sort());
  });

  it('a run with its time budget spent still does one batch of each kind, says it is not finished, and the next run goes on', async () => {
    const { db } = sys.deps;
    const { merchant } = await createMerchant(sys);
    const old = await Promise.all(Array.from({ length: 5 }, () => insertOperation(db, { merchantId: merchant.id, status: 'failed', createdAtSql: ago('60 days') })));
    const spent = { ...sys.deps, config: { ...sys.config, CLEANUP_TIME_BUDGET_S: 0 } };

    const first = await runCleanup(spent);
    expect(first.finished).to.equal(false);
    expect(first.steps.failedOperations).to.include({ rows: 2, batches: 1, finished: false });
    expect(await db('operations').whereIn('id', old)).to.have.length(3);
    let runs = 1;
    while ((await db('operations').whereIn('id', old)).length > 0 && runs < 10) {
      await runCleanup(spent);
      runs++;
    }
    expect(await db('operations').whereIn('id', old)).to.have.length(0);
    expect(runs).to.equal(3);
  });

  describe('audit events past AUDIT_RETENTION_DAYS (10 years)', () => {
    const chain = `test-archive-${hex(4)}`;
    let old: AuditRow[];
    let young: AuditRow[];
    const verify = async () => {
      const res = await sys.http.get('/v1/audit/verify', { key: sys.adminKey });
      expect(res.status).to.equal(200);
      return res.body as { ok: boolean; checked: number; first_broken_id: number | null };
    };
    const checkpoints = () => sys.deps.db('audit_checkpoints').where({ chain }).orderBy('id');

    before(async () => {
      old = await seedOldChain(sys.deps.db, chain, 7, 11);
      young = [await appendYoung(sys.deps.db, chain, 'test.young.1'), await appendYoung(sys.deps.db, chain, 'test.young.2')];
      expect(young[0]!.prev_hash).to.equal(old.at(-1)!.hash);
    });

    it('are archived from the start of their chain behind a checkpoint (id, hash, count) and exported; the chain still verifies', async () => {
      expect((await verify()).ok).to.equal(true);
      const { removed } = await runCleanup(sys.deps);
      expect(removed.auditEvents).to.be.at.least(7);

      const left = await sys.deps.db('audit_events').where({ chain }).orderBy('id').pluck('id');
      expect(left).to.deep.equal(young.map((e) => e.id));
      // Batches of 2: a checkpoint per batch, in the batch's own transaction, the newest pointing at the last archived event.
      const cps = await checkpoints();
      expect(cps.map((c) => c.archived_total)).to.deep.equal([2, 4, 6, 7]);
      expect(cps.at(-1)).to.include({ last_id: old.at(-1)!.id, last_hash: old.at(-1)!.hash });

      const res = await verify();
      expect(res).to.deep.equal({ ok: true, checked: res.checked, first_broken_id: null });
      expect(await verifyAuditChain(sys.deps.db)).to.deep.equal(res);

      // The exported rows verify on their own from genesis up to the checkpoint's hash.
      const exported = readdirSync(archiveDir)
        .filter((f) => f.startsWith(`audit-${chain}-`))
        .flatMap((f) => readFileSync(join(archiveDir, f), 'utf8').trim().split('\n'))
        .map((line) => JSON.parse(line) as AuditRow & { created_at: string })
        .map((row) => ({ ...row, created_at: new Date(row.created_at) }))
        .sort((a, b) => a.id - b.id);
      expect(exported.map((e) => e.id)).to.deep.equal(old.map((e) => e.id));
      let prev = GENESIS_HASH;
      for (const row of exported) {
        expect(linkHolds(prev, row), `exported event ${row.id}`).to.equal(true);
        prev = row.hash;
      }
      expect(prev).to.equal(cps.at(-1)!.last_hash);
    });

    it('after the checkpoint an edited event, a deleted one, or an archived one put back is still found', async () => {
      const { db } = sys.deps;
      const [first, second] = young as [AuditRow, AuditRow];
      try {
        await db('audit_events').where({ id: first.id }).update({ context: JSON.stringify({ forged: true }) });
        expect(await verify()).to.include({ ok: false, first_broken_id: first.id });
      } finally {
        await db('audit_events').where({ id: first.id }).update({ context: JSON.stringify(first.context) });
      }
      try {
        await db('audit_events').where({ id: first.id }).del();
        expect(await verify()).to.include({ ok: false, first_broken_id: second.id }); // its link no longer meets the checkpoint
      } finally {
        await db('audit_events').insert({ ...first, context: JSON.stringify(first.context) });
      }
      const archived = old.at(-1)!;
      try {
        await db('audit_events').insert({ ...archived, context: JSON.stringify(archived.context) });
        expect(await verify()).to.include({ ok: false, first_broken_id: archived.id }); // behind the checkpoint
      } finally {
        await db('audit_events').where({ id: archived.id }).del();
      }
      expect((await verify()).ok).to.equal(true);
    });

    it('a chain with a tampered old event is not archived (that would launder it into a clean checkpoint): verify keeps reporting it', async () => {
      const { db } = sys.deps;
      const tamperedChain = `test-archive-tampered-${hex(4)}`;
      const events = await seedOldChain(db, tamperedChain, 4, 11);
      const victim = events[1]!;
      try {
        await db('audit_events').where({ id: victim.id }).update({ action: 'test.forged' });
        const { removed } = await runCleanup(sys.deps);
        expect(removed.auditEvents).to.equal(0);
        expect(await db('audit_events').where({ chain: tamperedChain })).to.have.length(4);
        expect(await db('audit_checkpoints').where({ chain: tamperedChain })).to.have.length(0);
        expect(await verify()).to.include({ ok: false, first_broken_id: victim.id });
      } finally {
        await db('audit_events').where({ id: victim.id }).update({ action: victim.action });
      }
      // Repaired, it is archived like any other chain.
      expect((await runCleanup(sys.deps)).removed.auditEvents).to.equal(4);
      expect((await verify()).ok).to.equal(true);
    });
  });
});
