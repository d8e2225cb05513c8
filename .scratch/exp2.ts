import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { startLocalStack } from '../dev/stack.js';
import { migrateLatest } from '../db/knex.js';
import { loadConfig } from '../config/env.js';
import { createDeps } from '../config/deps.js';
import { findByIdempotencyKey } from '../db/queries/operations.js';
import { operationJobOptions } from '../jobs/queues.js';

const stack = await startLocalStack(mkdtempSync(join(tmpdir(), 'exp-')), { persistent: false, database: 'exp' });
const config = loadConfig({ DATABASE_URL: stack.databaseUrl, REDIS_URL: stack.redisUrl, LOG_LEVEL: 'silent' });
const deps = await createDeps(config);
await migrateLatest(deps.db);
async function bench(name: string, conc: number, n: number, fn: () => Promise<unknown>) {
  const lat: number[] = []; const t0 = performance.now();
  await Promise.all(Array.from({ length: conc }, async () => { for (let i = 0; i < n / conc; i++) { const s = performance.now(); await fn(); lat.push(performance.now() - s); } }));
  lat.sort((a, b) => a - b);
  console.log(`${name} conc ${conc}: ${(lat.length / ((performance.now() - t0) / 1000)).toFixed(0)}/s p50 ${lat[Math.floor(lat.length / 2)]!.toFixed(2)} p99 ${lat[Math.floor(lat.length * 0.99)]!.toFixed(2)}`);
}
for (const conc of [1, 8]) {
  await bench('pg select 1', conc, 400, () => deps.db.raw('select 1'));
  await bench('findByIdem', conc, 400, () => findByIdempotencyKey(deps.db, 'x', randomUUID()));
  await bench('redis multi', conc, 400, () => deps.redis.multi().incr('k').pexpire('k', 1000).exec());
  await bench('queue.add', conc, 400, () => { const id = `op_${randomUUID()}`; return deps.queues.partitions[Math.floor(Math.random() * 16)]!.add('payment', { operationId: id }, operationJobOptions(config, id)); });
}
process.exit(0);
