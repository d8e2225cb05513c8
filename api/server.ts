import { createServer, type Server } from 'node:http';
import type { Deps } from '../app/deps.js';
import { ensureAdminKey } from '../db/queries/api-keys.js';
import { sha256 } from '../domain/tokens.js';
import { runEntryPoint } from '../app/entry.js';
import { createApp } from './app.js';
import { OperationWaiter } from './operation-waiter.js';

export interface RunningApi {
  server: Server;
  url: string;
  stop(): Promise<void>;
}

/** Listens on HOST:PORT; stop() stops taking requests, lets those in flight finish, then ends the waits. */
export async function startApi(deps: Deps, port = deps.config.PORT, host = deps.config.HOST): Promise<RunningApi> {
  if (deps.config.MPS_ADMIN_KEY) {
    const key = deps.config.MPS_ADMIN_KEY;
    await ensureAdminKey(deps.db, key, sha256(key), key.slice(0, 16));
  }
  const waiter = new OperationWaiter(deps);
  await waiter.start();
  const app = createApp(deps, waiter);
  // A request must arrive whole within HTTP_REQUEST_TIMEOUT_MS (slowloris), checked every second.
  const timeout = deps.config.HTTP_REQUEST_TIMEOUT_MS;
  const server = createServer({ requestTimeout: timeout, headersTimeout: timeout, connectionsCheckingInterval: Math.min(1000, timeout) }, app);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  server.keepAliveTimeout = 65_000;
  const address = server.address();
  const actualPort = typeof address === 'object' && address ? address.port : port;
  const shownHost = host === '0.0.0.0' || host === '::' ? 'localhost' : host.includes(':') ? `[${host}]` : host;
  return {
    server,
    url: `http://${shownHost}:${actualPort}`,
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
  deps.logger.info({ url: api.url, host: deps.config.HOST, port: (api.server.address() as { port: number }).port }, 'web listening');
  return () => api.stop();
});
