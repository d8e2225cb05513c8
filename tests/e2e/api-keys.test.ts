import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import { countRows, createMerchant } from '../helpers/fixtures.js';
import { expectError } from '../helpers/request-checks.js';
import { testEnv } from '../helpers/env.js';
import type { HttpResult } from '../helpers/http.js';
import { sha256 } from '../../domain/tokens.js';
import { startSystem, type TestSystem } from '../helpers/system.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** `npm run cli -- …` as an operator runs it, against the test database. */
function cli(args: string[]): Promise<{ code: number | null; stdout: string }> {
  return new Promise((resolve) => {
    const child = spawn('npm', ['run', '-s', 'cli', '--', ...args], { cwd: ROOT, env: { ...process.env, DATABASE_URL: testEnv.databaseUrl, REDIS_URL: testEnv.redisUrl }, stdio: ['ignore', 'pipe', 'ignore'] });
    let stdout = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.on('exit', (code) => resolve({ code, stdout }));
  });
}

describe('e2e: API keys without SQL (POST/GET/DELETE /v1/api-keys, merchant key lists, cli create-key)', function () {
  this.timeout(60_000);
  let sys: TestSystem;

  before(async () => {
    sys = await startSystem({}, { workers: false });
  });
  after(async () => {
    await sys?.stop();
  });

  const admin = () => ({ key: sys.adminKey });

  it('an admin creates an app key, shown once; it works at once and is listed with its prefix, never the key', async () => {
    const res = await sys.http.post('/v1/api-keys', { role: 'app', name: 'member app backend' }, admin());
    expect(res.status, res.text).to.equal(201);
    expect(res.body).to.include({ role: 'app', name: 'member app backend', status: 'active', merchant_id: null, last_used_at: null });
    expect(res.body.key).to.match(/^mps_app_/);
    expect(res.body.key.startsWith(res.body.prefix)).to.equal(true);
    const member = await sys.http.post('/v1/members', { name: 'Key User' }, { key: res.body.key });
    expect(member.status, member.text).to.equal(201);

    const listed = await sys.http.get('/v1/api-keys?role=app&limit=200', admin());
    const row = listed.body.data.find((k: { id: string }) => k.id === res.body.id);
    expect(row).to.include({ prefix: res.body.prefix, role: 'app', name: 'member app backend', revoked_at: null });
    expect(Date.parse(row.last_used_at), 'last_used_at after its first use').to.be.closeTo(Date.now(), 60_000);
    expect(JSON.stringify(listed.body)).to.not.contain(res.body.key);
    expect(listed.body.data.every((k: { role: string }) => k.role === 'app')).to.equal(true);
  });

  it('lists cursor pages of admin, app and merchant keys but no member tokens; a merchant’s own keys under it', async () => {
    const m = await createMerchant(sys);
    const seen = new Set<string>();
    let cursor: string | null = null;
    let pages = 0;
    do {
      const res: HttpResult = await sys.http.get(`/v1/api-keys?limit=2${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`, admin());
      expect(res.status, res.text).to.equal(200);
      for (const k of res.body.data) {
        expect(seen.has(k.id), 'each key once').to.equal(false);
        seen.add(k.id);
        expect(k.role).to.be.oneOf(['admin', 'app', 'merchant']);
      }
      cursor = res.body.next_cursor;
      pages++;
    } while (cursor && pages < 10_000);
    expect(seen.has(m.keyId)).to.equal(true);
    const own = await sys.http.get(`/v1/merchants/${m.merchant.id}/api-keys`, admin());
    expect(own.body.data.map((k: { id: string }) => k.id)).to.deep.equal([m.keyId]);
    expect(own.body.data[0]).to.include({ role: 'merchant', merchant_id: m.merchant.id });
  });

  it('revokes a key: it stops authenticating; revoking again answers the same revoked key', async () => {
    const created = await sys.http.post('/v1/api-keys', { role: 'app', name: 'to revoke' }, admin());
    const gone = await sys.http.delete(`/v1/api-keys/${created.body.id}`, admin());
    expect(gone.status, gone.text).to.equal(200);
    expect(gone.body.status).to.equal('revoked');
    expect(Date.parse(gone.body.revoked_at)).to.be.closeTo(Date.now(), 60_000);
    expectError(await sys.http.post('/v1/members', { name: 'x' }, { key: created.body.key }), 401, 'UNAUTHENTICATED');
    expect((await sys.http.delete(`/v1/api-keys/${created.body.id}`, admin())).body.revoked_at).to.equal(gone.body.revoked_at);
    expect(await countRows(sys, 'audit_events', { object_id: created.body.id, action: 'api_key.revoke' })).to.equal(1);
  });

  it('is for admins only; bad bodies are 400 and make nothing', async () => {
    const m = await createMerchant(sys);
    const app = await sys.http.post('/v1/api-keys', { role: 'app', name: 'app' }, admin());
    expectError(await sys.http.post('/v1/api-keys', { role: 'app', name: 'x' }, { key: app.body.key }), 403, 'FORBIDDEN');
    expectError(await sys.http.get('/v1/api-keys', { key: m.key }), 403, 'FORBIDDEN');
    expectError(await sys.http.delete(`/v1/api-keys/${app.body.id}`, { key: m.key }), 403, 'FORBIDDEN');
    const before = await countRows(sys, 'api_keys', {});
    for (const body of [{ role: 'merchant', name: 'x' }, { role: 'member', name: 'x' }, { role: 'app' }, { role: 'app', name: 'x', merchant_id: m.merchant.id }]) {
      expectError(await sys.http.post('/v1/api-keys', body, admin()), 400, 'VALIDATION_ERROR');
    }
    expect(await countRows(sys, 'api_keys', {})).to.equal(before);
    expectError(await sys.http.delete('/v1/api-keys/6f1c1c1e-0000-4000-8000-000000000000', admin()), 404, 'NOT_FOUND');
  });

  it('never revokes the last active admin key (409 CONFLICT), also when two revocations race', async () => {
    const second = await sys.http.post('/v1/api-keys', { role: 'admin', name: 'second admin' }, admin());
    // Earlier test files leave admin keys of their own behind: retire them so these two are the only ones.
    const mine = await sys.deps.db('api_keys').where({ key_hash: sha256(sys.adminKey) }).first('id');
    await sys.deps.db('api_keys').where({ role: 'admin', status: 'active' }).whereNotIn('id', [second.body.id, mine.id]).update({ status: 'revoked', revoked_at: sys.deps.db.fn.now() });
    const [a, b] = await Promise.all([sys.http.delete(`/v1/api-keys/${second.body.id}`, admin()), sys.http.delete(`/v1/api-keys/${mine.id}`, { key: second.body.key })]);
    expect([a.status, b.status].sort(), `${a.text} ${b.text}`).to.deep.equal([200, 409]);
    expect(await countRows(sys, 'api_keys', { role: 'admin', status: 'active' })).to.equal(1);
    const survivor = a.status === 200 ? sys.adminKey : second.body.key;
    const lastId = a.status === 200 ? mine.id : second.body.id;
    expectError(await sys.http.delete(`/v1/api-keys/${lastId}`, { key: survivor }), 409, 'CONFLICT');
    // With a new admin key made, the old one may go.
    const fresh = await sys.http.post('/v1/api-keys', { role: 'admin', name: 'successor' }, { key: survivor });
    expect((await sys.http.delete(`/v1/api-keys/${lastId}`, { key: fresh.body.key })).status).to.equal(200);
  });

  it('npm run cli -- create-key --role app prints a working app key; a wrong role is refused', async () => {
    const made = await cli(['create-key', '--role', 'app', '--name', 'from the cli']);
    expect(made.code, made.stdout).to.equal(0);
    const key = made.stdout.trim().split('\n').pop();
    expect(key, made.stdout).to.match(/^mps_app_[A-Za-z0-9_-]{43}$/);
    expect((await sys.http.post('/v1/members', { name: 'Cli User' }, { key: key! })).status).to.equal(201);
    expect((await cli(['create-key', '--role', 'merchant'])).code).to.equal(2);
  });
});
