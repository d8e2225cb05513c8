import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startLocalStack, type LocalStack } from '../../dev/stack.js';
import { createKnex, migrateLatest } from '../../db/knex.js';
import { testEnv } from './env.js';

let stack: LocalStack | undefined;
let dataDir: string | undefined;

/**
 * Root hooks: real Postgres and Redis for the whole run. Given DATABASE_URL/REDIS_URL they are
 * used as they are; otherwise embedded Postgres and a redis-server on free ports are started in a
 * temporary folder and removed afterwards.
 */
export const mochaHooks = {
  async beforeAll(this: Mocha.Context) {
    this.timeout(120_000);
    if (process.env.DATABASE_URL && process.env.REDIS_URL) {
      testEnv.databaseUrl = process.env.DATABASE_URL;
      testEnv.redisUrl = process.env.REDIS_URL;
    } else {
      dataDir = mkdtempSync(join(tmpdir(), 'mps-test-'));
      stack = await startLocalStack(dataDir, { persistent: false, database: 'mps_test' });
      testEnv.databaseUrl = stack.databaseUrl;
      testEnv.redisUrl = stack.redisUrl;
      testEnv.stack = stack;
    }
    const knex = createKnex(testEnv.databaseUrl, 2, () => undefined);
    await migrateLatest(knex);
    await knex.destroy();
  },
  async afterAll(this: Mocha.Context) {
    this.timeout(60_000);
    await stack?.stop();
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  },
};
