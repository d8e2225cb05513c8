import type { Server } from 'node:http';
import express, { type Router } from 'express';
import { healthRoutes } from '../app/health.js';
import type { Deps } from '../app/deps.js';

/**
 * /health, /ready and /metrics of a process without the API (worker, scheduler) on its own port,
 * on the API's address (HOST: every interface by default, loopback only under `npm start`);
 * `routes` come first, so a process may answer /health with more. Port 0 or undefined: none.
 */
export async function startOpsServer(deps: Deps, port: number, portSetting: string, routes?: Router): Promise<Server | undefined> {
  if (!port) return undefined;
  const app = express().disable('x-powered-by');
  if (routes) app.use(routes);
  app.use(healthRoutes(deps));
  return new Promise((resolve) => {
    const server = app.listen(port, deps.config.HOST, () => resolve(server));
    // A second process on the same host finds the port taken: it still works, only unscraped.
    server.once('error', (err) => {
      deps.logger.error({ err: err.message, port }, `/metrics not served; set ${portSetting} per process`);
      resolve(undefined);
    });
  });
}
