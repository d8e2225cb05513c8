import { chmodSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { loadConfigOrExit, type Config } from '../config/env.js';
import { closeDeps, createDeps } from '../app/deps.js';
import { redisConfigured } from '../config/redis.js';
import { createKnex, migrateLatest } from '../db/knex.js';
import { seedDemo, type DemoData } from '../db/seeds/demo.js';
import { startApi } from '../api/server.js';
import { startWorkers } from '../workers/main.js';
import { startScheduler } from '../workers/scheduler.js';
import { startProbes } from '../workers/probes.js';
import { MissingRedisError, startLocalStack, type LocalStack } from './stack.js';
import { demoInstructions, stackBanner } from './instructions.js';
import { DATA_DIR, STACK_FILE, type RunningStack } from './stack-file.js';

const DEMO_FILE = join(DATA_DIR, 'demo.json');

/**
 * `npm start`: the whole system in one process. Without DATABASE_URL / REDIS_URL (or
 * REDIS_CLUSTER_NODES) it runs its own Postgres and Redis with data in ./.data, so a second start
 * finds the same data; only that embedded stack gets demo data and the developer defaults
 * (127.0.0.1, insecure webhooks).
 */
async function main() {
  const started = Date.now();
  let config: Config = loadConfigOrExit();

  let stack: LocalStack | undefined;
  const hasRedis = redisConfigured(config);
  if (!config.DATABASE_URL || !hasRedis) {
    mkdirSync(DATA_DIR, { recursive: true });
    console.log('Starting embedded PostgreSQL and redis-server (data in ./.data) …');
    stack = await startLocalStack(DATA_DIR, { persistent: true });
    config = Object.freeze({
      ...config,
      DATABASE_URL: config.DATABASE_URL ?? stack.databaseUrl,
      REDIS_URL: hasRedis ? config.REDIS_URL : stack.redisUrl,
      ENCRYPTION_KEY: config.ENCRYPTION_KEY ?? localEncryptionKey(),
      HOST: process.env.HOST ? config.HOST : '127.0.0.1',
      // The demo's webhook receiver runs on this machine; production keeps the default (false).
      WEBHOOK_ALLOW_INSECURE: process.env.WEBHOOK_ALLOW_INSECURE ? config.WEBHOOK_ALLOW_INSECURE : config.NODE_ENV !== 'production',
    });
  }

  const migrator = createKnex(config.DATABASE_URL!, 1, () => undefined);
  const applied = await migrateLatest(migrator);
  await migrator.destroy();
  if (applied.length) console.log(`Applied ${applied.length} migrations.`);

  const deps = await createDeps(config);
  const withDemo = stack !== undefined && config.NODE_ENV !== 'production';
  const demo = withDemo ? (existsSync(DEMO_FILE) ? (JSON.parse(readFileSync(DEMO_FILE, 'utf8')) as DemoData) : await createDemo(deps)) : undefined;
  const workers = await startWorkers(deps);
  const scheduler = startScheduler(deps);
  const probes = startProbes(deps);
  const api = await startApi(deps);
  if (stack) writeStackFile({ pid: process.pid, apiUrl: api.url, databaseUrl: config.DATABASE_URL!, redisUrl: config.REDIS_URL });

  if (demo) console.log(demoInstructions(api.url, demo));
  console.log(stackBanner(api.url, config, stack !== undefined));
  console.log(`MPS is up in ${((Date.now() - started) / 1000).toFixed(1)} s: api ${api.url}, workers on ${config.CARD_PARTITIONS} partitions, scheduler. Ctrl-C stops.`);

  let stopping = false;
  const stop = async () => {
    if (stopping) return;
    stopping = true;
    console.log('\nStopping …');
    // Each step runs even if one before it failed: the embedded servers must not outlive us.
    const steps = [() => api.stop(), () => scheduler.stop(), async () => probes.stop(), () => workers.close(), () => closeDeps(deps), async () => stack?.stop()];
    for (const step of steps) {
      await step().catch((err: unknown) => console.error('while stopping:', (err as Error).message));
    }
    if (stack) rmSync(STACK_FILE, { force: true });
    console.log('Stopped.');
    process.exit(0);
  };
  process.on('SIGINT', () => void stop());
  process.on('SIGTERM', () => void stop());
}

async function createDemo(deps: Awaited<ReturnType<typeof createDeps>>): Promise<DemoData> {
  const demo = await seedDemo(deps);
  // Plain keys are only ever shown once by the API; the demo keeps its own in ./.data (git-ignored) to show them again.
  writeFileSync(DEMO_FILE, JSON.stringify(demo, null, 2), { mode: 0o600 });
  return demo;
}

/** Where the running embedded stack listens, for `npm run cli` (its ports change at every start). */
function writeStackFile(running: RunningStack): void {
  writeFileSync(STACK_FILE, JSON.stringify(running, null, 2), { mode: 0o600 });
}

/** The embedded default's ENCRYPTION_KEY: made once and kept beside the data it protects. */
function localEncryptionKey(): string {
  const file = join(DATA_DIR, 'encryption.key');
  if (!existsSync(file)) writeFileSync(file, randomBytes(32).toString('hex'), { mode: 0o600 });
  chmodSync(file, 0o600);
  return readFileSync(file, 'utf8').trim();
}

main().catch((err: unknown) => {
  if (err instanceof MissingRedisError) console.error(err.message);
  else console.error('MPS failed to start:', err);
  process.exit(1);
});
