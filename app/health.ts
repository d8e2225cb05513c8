import { Router } from 'express';
import type { Deps } from './deps.js';
import { migrationsCurrent } from '../db/knex.js';
import { AppError } from '../domain/errors.js';
import { sha256, sameDigest } from '../domain/tokens.js';

export function healthRoutes(deps: Deps): Router {
  const router = Router();
  router.get('/health', (_req, res) => {
    res.json({ status: 'ok' });
  });
  router.get('/ready', async (_req, res) => {
    const check = async (fn: () => Promise<unknown>) => {
      try {
        return (await fn()) !== false ? 'ok' : 'pending';
      } catch (err) {
        return `error: ${(err as Error).message}`;
      }
    };
    const [postgres, redis, migrations] = await Promise.all([
      check(() => deps.db.raw('select 1')),
      check(() => deps.redis.ping()),
      check(() => migrationsCurrent(deps.db)),
    ]);
    const ok = postgres === 'ok' && redis === 'ok' && migrations === 'ok';
    res.status(ok ? 200 : 503).json({ status: ok ? 'ready' : 'not_ready', checks: { postgres, redis, migrations } });
  });
  router.get('/metrics', async (req, res) => {
    const token = deps.config.METRICS_TOKEN;
    if (token) {
      const given = /^Bearer (.+)$/.exec(req.get('authorization') ?? '')?.[1] ?? '';
      if (!sameDigest(sha256(given), sha256(token))) throw new AppError('UNAUTHENTICATED', 'Metrics need the METRICS_TOKEN bearer token');
    }
    res.setHeader('Content-Type', deps.metrics.registry.contentType);
    res.send(await deps.metrics.registry.metrics());
  });
  return router;
}
