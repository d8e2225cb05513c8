import { randomBytes } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { Writable } from 'node:stream';
import { loadConfig, type Config } from '../../config/env.js';
import { createLogger } from '../../config/logger.js';
import { closeDeps, createDeps } from '../../config/deps.js';
import { createApp } from '../../api/app.js';
import { OperationWaiter } from '../../api/operation-waiter.js';
import { startWorkers } from '../../workers/main.js';
import { createApiKey } from '../../db/queries/api-keys.js';
import { testEnv } from './env.js';
import { httpClient } from './http.js';
import type { TestSystem } from './system.js';

/** Collects everything pino writes, as text and as parsed JSON lines. */
export class LogCapture extends Writable {
  readonly chunks: string[] = [];

  override _write(chunk: Buffer | string, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    this.chunks.push(chunk.toString());
    callback();
  }

  get text(): string {
    return this.chunks.join('');
  }

  /** Every line as JSON; a line that is not JSON fails the test that reads it. */
  lines(): Record<string, unknown>[] {
    return this.text
      .split('\n')
      .filter((l) => l.trim() !== '')
      .map((l) => {
        try {
          return JSON.parse(l) as Record<string, unknown>;
        } catch {
          throw new Error(`log line is not JSON: ${l}`);
        }
      });
  }
}

export interface CapturedSystem extends TestSystem {
  logs: LogCapture;
}

/**
 * The same assembly as tests/helpers/system.ts (API on port 0, workers, own queue prefix), with
 * the deps' pino logger writing to an in-memory stream so tests can read every log line.
 */
export async function startCapturedSystem(logLevel: Config['LOG_LEVEL'], overrides: Partial<Config> = {}): Promise<CapturedSystem> {
  const logs = new LogCapture();
  const config = loadConfig(
    { DATABASE_URL: testEnv.databaseUrl, REDIS_URL: testEnv.redisUrl, LOG_LEVEL: logLevel, NODE_ENV: 'test' },
    { QUEUE_PREFIX: `t${randomBytes(4).toString('hex')}`, AUTH_CACHE_TTL_MS: 0, DB_POOL_MAX: 10, ENCRYPTION_KEY: randomBytes(32).toString('hex'), ...overrides },
  );
  const deps = await createDeps(config, { logger: createLogger(logLevel, logs) });
  const waiter = new OperationWaiter(deps);
  await waiter.start();
  const app = createApp(deps, waiter);
  const server: Server = await new Promise((resolve) => {
    const s = app.listen(0, '127.0.0.1', () => resolve(s));
  });
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const workers = await startWorkers(deps);
  const { key: adminKey } = await createApiKey(deps.db, { role: 'admin', name: 'captured test admin' });
  return {
    url,
    deps,
    config,
    http: httpClient(url),
    adminKey,
    workers,
    logs,
    stop: async () => {
      await new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections?.();
      await workers.close();
      await waiter.stop();
      await closeDeps(deps);
    },
  };
}
