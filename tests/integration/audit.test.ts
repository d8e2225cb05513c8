import { execFile } from 'node:child_process';
import { expect } from 'chai';
import { createMerchant } from '../helpers/fixtures.js';
import { testEnv } from '../helpers/env.js';
import { sleep } from '../helpers/sql-rows.js';
import { startSystem, type TestSystem } from '../helpers/system.js';

/** `npm run cli -- verify-audit` against the test database: exit code and output. */
function cliVerifyAudit(): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, ['--import', 'tsx', 'cli/main.ts', 'verify-audit'], { env: { ...process.env, DATABASE_URL: testEnv.databaseUrl } }, (err, stdout, stderr) => {
      resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, out: `${stdout}${stderr}` });
    });
  });
}

/**
 * The audit trail (DESIGN.md "Audit"): every state change is an event in a hash chain, listed with
 * filters and a cursor, and verified by GET /v1/audit/verify and the CLI. All test files share one
 * database, so the chain holds their events too: the tamper test runs last and restores the row.
 */
describe('integration: audit trail', function () {
  this.timeout(60_000);
  let sys: TestSystem;
  let merchantId: string;
  let adminKeyId: string;
  const requestIds: Record<string, string> = {};

  const events = (query: string) => sys.http.get(`/v1/audit/events?${query}`, { key: sys.adminKey });
  const verify = async () => {
    const res = await sys.http.get('/v1/audit/verify', { key: sys.adminKey });
    expect(res.status).to.equal(200);
    return res.body as { ok: boolean; checked: number; first_broken_id: number | null };
  };
  const count = async (where = 'true') => (await sys.deps.db.raw<{ rows: { n: number }[] }>(`SELECT count(*)::bigint AS n FROM audit_events WHERE ${where}`)).rows[0]!.n;

  before(async () => {
    sys = await startSystem({}, { workers: false });
    adminKeyId = (await sys.deps.db('api_keys').where({ role: 'admin' }).orderBy('created_at', 'desc').first('id')).id;
    const m = await createMerchant(sys);
    merchantId = m.merchant.id;
    await sleep(5);
    const suspend = await sys.http.post(`/v1/merchants/${merchantId}/suspend`, { reason: 'chargeback spike' }, { key: sys.adminKey });
    expect(suspend.status).to.equal(200);
    requestIds.suspend = suspend.headers.get('x-request-id')!;
    await sleep(5);
    const reactivate = await sys.http.post(`/v1/merchants/${merchantId}/reactivate`, {}, { key: sys.adminKey });
    expect(reactivate.status).to.equal(200);
    requestIds.reactivate = reactivate.headers.get('x-request-id')!;
  });
  after(async () => {
    await sys.stop();
  });

  it('records each state change with actor, role, request id, ip and context, newest first', async () => {
    const res = await events(`object_type=merchant&object_id=${merchantId}`);
    expect(res.status).to.equal(200);
    expect(res.body.next_cursor).to.equal(null);
    const rows = res.body.data;
    expect(rows.map((r: { action: string }) => r.action)).to.deep.equal(['merchant.reactivate', 'merchant.suspend', 'merchant.create']);
    expect(rows[0].id).to.be.above(rows[1].id);
    expect(rows[1].id).to.be.above(rows[2].id);
    const suspend = rows[1];
    expect(suspend).to.include({ actor_type: 'api_key', actor_id: adminKeyId, role: 'admin', object_type: 'merchant', object_id: merchantId, request_id: requestIds.suspend });
    expect(suspend.context).to.deep.equal({ reason: 'chargeback spike' });
    expect(suspend.ip).to.be.a('string').and.not.empty;
    expect(rows[0].request_id).to.equal(requestIds.reactivate);
    expect(Date.parse(suspend.created_at)).to.be.closeTo(Date.now(), 60_000);
    expect(suspend.hash).to.match(/^[0-9a-f]{64}$/);
  });

  it('filters by object, action and time, and pages with a cursor until next_cursor is null', async () => {
    const keyEvents = await events(`object_type=api_key&action=merchant.api_key_create&limit=200`);
    expect(keyEvents.body.data.length).to.be.at.least(1);
    expect(keyEvents.body.data.every((r: { action: string; object_type: string }) => r.action === 'merchant.api_key_create' && r.object_type === 'api_key')).to.equal(true);
    expect(keyEvents.body.data.some((r: { context: { merchant_id: string } }) => r.context.merchant_id === merchantId)).to.equal(true);

    const seen: number[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const page: { status: number; body: { data: { id: number }[]; next_cursor: string | null } } = await events(`object_type=merchant&object_id=${merchantId}&limit=1${cursor ? `&cursor=${cursor}` : ''}`);
      expect(page.status).to.equal(200);
      expect(page.body.data).to.have.length(1);
      seen.push(page.body.data[0]!.id);
      cursor = page.body.next_cursor;
      pages++;
    } while (cursor && pages < 10);
    expect(pages).to.equal(3);
    expect(cursor).to.equal(null);
    expect([...seen].sort((a, b) => b - a)).to.deep.equal(seen);

    const all = (await events(`object_type=merchant&object_id=${merchantId}`)).body.data;
    const suspendAt = all.find((r: { action: string }) => r.action === 'merchant.suspend').created_at;
    const from = await events(`object_type=merchant&object_id=${merchantId}&from=${encodeURIComponent(suspendAt)}`);
    expect(from.body.data.map((r: { action: string }) => r.action)).to.deep.equal(['merchant.reactivate', 'merchant.suspend']);
    const to = await events(`object_type=merchant&object_id=${merchantId}&to=${encodeURIComponent(suspendAt)}`);
    expect(to.body.data.map((r: { action: string }) => r.action)).to.deep.equal(['merchant.create']);
    const action = await events(`object_id=${merchantId}&action=merchant.suspend`);
    expect(action.body.data.map((r: { action: string }) => r.action)).to.deep.equal(['merchant.suspend']);

    for (const bad of ['cursor=abc', 'limit=0', 'limit=201', 'from=yesterday', 'bogus=1']) {
      const res = await events(bad);
      expect(res.status, bad).to.equal(400);
      expect(res.body.error.code, bad).to.equal('VALIDATION_ERROR');
    }
    const { key } = await createMerchant(sys);
    expect((await sys.http.get('/v1/audit/events', { key })).status).to.equal(403);
    expect((await sys.http.get('/v1/audit/verify', { key })).status).to.equal(403);
  });

  it('concurrent state changes still form one unbroken chain: each event links to the one before it', async () => {
    const results = await Promise.all(Array.from({ length: 20 }, (_, i) => sys.http.post('/v1/merchants', { code: `AUDIT${Date.now()}${i}`, name: 'Concurrent' }, { key: sys.adminKey })));
    expect(results.map((r) => r.status)).to.deep.equal(Array(20).fill(201));
    // Links are checked within each chain (rows may carry a `chain`; without one there is a single chain).
    const last = (await sys.deps.db('audit_events').orderBy('id', 'desc').limit(40)).reverse();
    const heads = new Map<string, string>();
    let links = 0;
    for (const row of last) {
      const chain = (row.chain as string | undefined) ?? 'main';
      const prev = heads.get(chain);
      if (prev !== undefined) {
        expect(row.prev_hash, `link into ${row.id}`).to.equal(prev);
        links++;
      }
      heads.set(chain, row.hash);
    }
    expect(links).to.be.at.least(20);
  });

  it('an untouched chain verifies: ok, checked = every row, over HTTP and in the CLI', async () => {
    const result = await verify();
    expect(result).to.deep.equal({ ok: true, checked: await count(), first_broken_id: null });
    const cli = await cliVerifyAudit();
    expect(cli.code, cli.out).to.equal(0);
    expect(cli.out).to.contain('Audit chain intact');
  });

  // Runs last in this file and restores what it changes, since every test file shares this chain.
  it('an edited or deleted row breaks the chain at that row (or the next); restoring it verifies again', async () => {
    const row = await sys.deps.db('audit_events').where({ object_type: 'merchant', object_id: merchantId, action: 'merchant.suspend' }).first();
    const n = Number(row.id);
    const restore = async () => {
      await sys.deps.db('audit_events').where({ id: n }).update({ context: JSON.stringify(row.context) });
    };
    try {
      await sys.deps.db.raw(`UPDATE audit_events SET context = '{"x":1}' WHERE id = ?`, [n]);
      const broken = await verify();
      expect(broken).to.deep.equal({ ok: false, checked: await count(`id < ${n}`), first_broken_id: n });
      const cli = await cliVerifyAudit();
      expect(cli.code).to.equal(1);
      expect(cli.out).to.contain(`BROKEN at event ${n}`);
    } finally {
      await restore();
    }
    expect(await verify()).to.deep.equal({ ok: true, checked: await count(), first_broken_id: null });

    // Deleting the row breaks the link of the next row of its chain.
    const nextQuery = sys.deps.db('audit_events').where('id', '>', n).orderBy('id');
    if (row.chain !== undefined) nextQuery.andWhere('chain', row.chain);
    const nextId = Number((await nextQuery.first('id')).id);
    try {
      await sys.deps.db('audit_events').where({ id: n }).del();
      const broken = await verify();
      expect(broken.ok).to.equal(false);
      expect(broken.first_broken_id).to.equal(nextId);
    } finally {
      if (!(await sys.deps.db('audit_events').where({ id: n }).first())) await sys.deps.db('audit_events').insert({ ...row, context: JSON.stringify(row.context) });
    }
    expect(await verify()).to.deep.equal({ ok: true, checked: await count(), first_broken_id: null });
  });
});
