import type { Server } from 'node:http';
import type { Deps } from '../config/deps.js';
import { ensureAdminKey } from '../db/queries/api-keys.js';
import { sha256 } from '../domain/tokens.js';
import { runEntryPoint } from '../workers/entry.js';
import { createApp } from './app.js';
import { OperationWaiter } from './operation-waiter.js';

export interface RunningApi {
  server: Server;
  url: string;
  stop(): Promise<void>;
}

/** Listens on PORT; stop() stops taking requests, lets those in flight finish, then ends the waits. */
export async function startApi(deps: Deps, port = deps.config.PORT, host = '0.0.0.0'): Promise<RunningApi> {
  if (deps.config.MPS_ADMIN_KEY) {
    const key = deps.config.MPS_ADMIN_KEY;
    await ensureAdminKey(deps.db, key, sha256(key), key.slice(0, 16));
  }
  const waiter = new OperationWaiter(deps);
  await waiter.start();
  const app = createApp(deps, waiter);
  const server: Server = await new Promise((resolve, reject) => {
    const s = app.listen(port, host, () => resolve(s));
    s.once('error', reject);
  });
  server.keepAliveTimeout = 65_000;
  const address = server.address();
  const actualPort = typeof address === 'object' && address ? address.port : port;
  return {
    server,
    url: `http://localhost:${actualPort}`,
    stop: async () => {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      await waiter.stop();
      // Keep-alive connections become idle as their last responses go out: close them as they do.
      const sweep = setInterval(() => server.closeIdleConnections(), 50);
      server.closeIdleConnections();
      await closed;
      clearInterval(sweep);
    },
  };
}

runEntryPoint(import.meta.url, 'web', async (deps) => {
  const api = await startApi(deps);
  return () => api.stop();
});
