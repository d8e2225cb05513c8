import { randomBytes } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { loadConfig, type Config } from '../../config/env.js';
import { closeDeps, createDeps, type Deps } from '../../app/deps.js';
import type { Logger } from '../../config/logger.js';
import { createApp } from '../../api/app.js';
import { OperationWaiter } from '../../api/operation-waiter.js';
import { startWorkers, type RunningWorkers } from '../../workers/main.js';
import { createApiKey } from '../../db/queries/api-keys.js';
import { testEnv } from './env.js';
import { httpClient, type HttpClient } from './http.js';

export interface TestSystem {
  url: string;
  deps: Deps;
  config: Config;
  http: HttpClient;
  adminKey: string;
  workers?: RunningWorkers;
  stop(): Promise<void>;
}

export interface SystemOptions {
  workers?: boolean;
  logger?: Logger;
  /** Another database than the run's. */
  databaseUrl?: string;
  /** Another Redis deployment than the run's single node (a Cluster's nodes, a Sentinel URL). */
  redis?: { REDIS_URL: string } | { REDIS_CLUSTER_NODES: string };
}

/**
 * The API in-process on port 0 and (unless `workers: false`) the workers, against the run's real
 * Postgres and Redis (or the database `databaseUrl` names), with a queue prefix of its own so that
 * test files never share jobs.
 */
export async function startSystem(overrides: Partial<Config> = {}, options: SystemOptions = {}): Promise<TestSystem> {
  const config = loadConfig(
    { DATABASE_URL: options.databaseUrl ?? testEnv.databaseUrl, ...(options.redis ?? { REDIS_URL: testEnv.redisUrl }), LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'silent', NODE_ENV: 'test' },
    { QUEUE_PREFIX: `t${randomBytes(4).toString('hex')}`, AUTH_CACHE_TTL_MS: 0, WEBHOOK_ALLOW_INSECURE: true, RATE_LIMIT_QR_ISSUE_PER_CARD_PER_MIN: 100_000, DB_POOL_MAX: 10, ENCRYPTION_KEY: randomBytes(32).toString('hex'), ...overrides },
  );
  const deps = await createDeps(config, { logger: options.logger });
  const waiter = new OperationWaiter(deps);
  await waiter.start();
  const app = createApp(deps, waiter);
  const server: Server = await new Promise((resolve) => {
    const s = app.listen(0, '127.0.0.1', () => resolve(s));
  });
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const workers = options.workers === false ? undefined : await startWorkers(deps);
  const { key: adminKey } = await createApiKey(deps.db, { role: 'admin', name: 'test admin' });
  return {
    url,
    deps,
    config,
    http: httpClient(url),
    adminKey,
    workers,
    stop: async () => {
      await new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections?.();
      await workers?.close();
      await waiter.stop();
      await closeDeps(deps);
    },
  };
}
