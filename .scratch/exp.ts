import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { startLocalStack } from '../dev/stack.js';
import { createKnex, migrateLatest } from '../db/knex.js';
import { testEnv } from '../tests/helpers/env.js';
import { startSystem } from '../tests/helpers/system.js';
import { preload } from '../bench/preload.js';

const stack = await startLocalStack(mkdtempSync(join(tmpdir(), 'exp-')), { persistent: false, database: 'exp' });
testEnv.databaseUrl = stack.databaseUrl; testEnv.redisUrl = stack.redisUrl;
const db = createKnex(stack.databaseUrl, 2, () => undefined);
await migrateLatest(db);
const data = await preload(db, { cards: 500, membersPerCard: 20, merchants: 4, balanceMinor: 10_000_000, qrTtlS: 3600 });
const sys = await startSystem({ RATE_LIMIT_PER_KEY_PER_MIN: 1e7, RATE_LIMIT_PER_IP_PER_MIN: 1e7, RATE_LIMIT_PAYMENT_PER_KEY_PER_MIN: 1e7, AUTH_CACHE_TTL_MS: 5000, DB_POOL_MAX: 20 });
const used = new Int32Array(501);
async function one(mode: string) {
  const c = 1 + Math.floor(Math.random() * 500); const m = used[c]!++;
  const t0 = performance.now();
  const res = await fetch(`${sys.url}/v1/payments`, { method: 'POST', headers: { authorization: `Bearer ${data.merchantKeys[c % 4]}`, 'content-type': 'application/json', 'idempotency-key': randomUUID(), ...(mode === 'wait' ? { prefer: 'wait=10' } : {}) }, body: JSON.stringify({ qr: data.qr(c, m), amount: '10.00' }) });
  const body = await res.json() as any;
  return { ms: performance.now() - t0, status: res.status, op: body.status };
}
for (const conc of [1, 8, 32]) {
  for (const mode of ['nowait', 'wait']) {
    const lat: number[] = []; const t0 = performance.now();
    await Promise.all(Array.from({ length: conc }, async () => { for (let i = 0; i < Math.max(10, 200 / conc); i++) lat.push((await one(mode)).ms); }));
    lat.sort((a, b) => a - b);
    console.log(`conc ${conc} ${mode}: n=${lat.length} ${(lat.length / ((performance.now() - t0) / 1000)).toFixed(0)}/s p50 ${lat[Math.floor(lat.length / 2)]!.toFixed(1)} p99 ${lat[Math.floor(lat.length * 0.99)]!.toFixed(1)}`);
  }
}
const { rows } = await db.raw(`SELECT round(avg(extract(epoch FROM started_at - created_at) * 1000)::numeric, 1) AS wait, round(avg(extract(epoch FROM completed_at - started_at) * 1000)::numeric, 1) AS proc FROM operations WHERE type='payment' AND principal LIKE 'merchant:%'`);
console.log(rows);
await sys.stop(); await db.destroy(); await stack.stop();
