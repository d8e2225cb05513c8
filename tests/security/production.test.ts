import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createServer, type AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import { createKnex } from '../../db/knex.js';
import { createApiKey } from '../../db/queries/api-keys.js';
import { newApiKey } from '../../domain/tokens.js';
import { testEnv } from '../helpers/env.js';
import { httpClient, type HttpClient } from '../helpers/http.js';
import { waitFor } from '../helpers/webhook-receiver.js';
import { expectCode } from './helpers.js';

/**
 * The two high findings as production runs them: the Procfile `web` process (api/server.ts, in
 * source form under tsx) started as a child with NODE_ENV=production and only the variables a
 * deployment sets. No test override reaches it, so what it refuses is what production refuses.
 */

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

describe('security: the production web process (NODE_ENV=production)', function () {
  this.timeout(60_000);
  let child: ChildProcess | undefined;
  let output = '';
  let http: HttpClient;
  const adminKey = newApiKey('admin').key;
  const metricsToken = randomBytes(24).toString('hex');

  before(async function () {
    this.timeout(45_000);
    const port = await freePort();
    // `node --import tsx api/server.ts` is what `npx tsx api/server.ts` runs, minus the npx wrapper, so the pid we kill is the server.
    child = spawn(process.execPath, ['--import', 'tsx', 'api/server.ts'], {
      cwd: ROOT,
      env: {
        PATH: process.env.PATH,
        HOME: process.env.HOME,
        NODE_ENV: 'production',
        PORT: String(port),
        DATABASE_URL: testEnv.databaseUrl,
        REDIS_URL: testEnv.redisUrl,
        MPS_ADMIN_KEY: adminKey,
        METRICS_TOKEN: metricsToken,
        ENCRYPTION_KEY: randomBytes(32).toString('hex'),
        QUEUE_PREFIX: `tprod${randomBytes(4).toString('hex')}`,
        LOG_LEVEL: 'info',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stdout!.on('data', (c: Buffer) => (output += c.toString()));
    child.stderr!.on('data', (c: Buffer) => (output += c.toString()));
    const exited = new Promise<never>((_, reject) => child!.once('exit', (code) => reject(new Error(`web exited with ${code} before it was ready:\n${output.slice(-3000)}`))));
    http = httpClient(`http://127.0.0.1:${port}`);
    await Promise.race([
      exited,
      waitFor('GET /ready → 200', async () => (await http.get('/ready').catch(() => ({ status: 0 }))).status === 200, 40_000, 200).catch((err: Error) => {
        throw new Error(`${err.message}; web output:\n${output.slice(-3000)}`);
      }),
    ]);
  });

  after(async () => {
    if (!child || child.exitCode !== null) return;
    const gone = new Promise<void>((resolve) => child!.once('exit', () => resolve()));
    child.kill('SIGTERM');
    const timer = setTimeout(() => child!.kill('SIGKILL'), 10_000);
    await gone;
    clearTimeout(timer);
  });

  it('/metrics is closed without METRICS_TOKEN (control that this really is the configured production process)', async () => {
    expect((await http.get('/metrics')).status).to.equal(401);
    expect((await http.get('/metrics', { headers: { authorization: `Bearer ${metricsToken}` } })).status).to.equal(200);
  });

  it('a merchant cannot register an http:// or loopback https:// webhook (400), and nothing is stored', async () => {
    const merchant = await http.post('/v1/merchants', { code: `P${randomBytes(5).toString('hex').toUpperCase()}`, name: 'Prod Shop' }, { key: adminKey });
    expect(merchant.status, merchant.text).to.equal(201);
    const keyRes = await http.post(`/v1/merchants/${merchant.body.id}/api-keys`, {}, { key: adminKey });
    expect(keyRes.status, keyRes.text).to.equal(201);
    const key = keyRes.body.key as string;
    for (const url of ['https://127.0.0.1/hooks/mps', 'https://[::1]/hooks/mps', 'https://169.254.169.254/latest/meta-data/', 'http://example.com/hooks/mps', 'http://127.0.0.1:8080/hooks/mps']) {
      expectCode(await http.post('/v1/merchant/webhook-endpoints', { url, events: ['payment.succeeded'] }, { key }), 400, 'VALIDATION_ERROR', url);
    }
    const list = await http.get('/v1/merchant/webhook-endpoints', { key });
    expect(list.status, list.text).to.equal(200);
    expect(list.body.data).to.deep.equal([]);
  });

  it('an app key cannot mint a voucher without payment_reference (400)', async () => {
    const db = createKnex(testEnv.databaseUrl, 2, () => undefined);
    let appKey: string;
    try {
      appKey = (await createApiKey(db, { role: 'app', name: 'prod test app' })).key;
    } finally {
      await db.destroy();
    }
    const member = await http.post('/v1/members', { name: 'Prod Member' }, { key: appKey });
    expect(member.status, member.text).to.equal(201);
    const res = await http.post('/v1/cards', { type: 'voucher', owner_member_id: member.body.id, face_value: '500.00' }, { key: appKey });
    expectCode(res, 400, 'VALIDATION_ERROR', 'voucher without payment_reference');
    expect(JSON.stringify(res.body.error)).to.contain('payment_reference');
  });
});
