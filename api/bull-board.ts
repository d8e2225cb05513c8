import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { ExpressAdapter } from '@bull-board/express';
import { Router, type NextFunction, type Request, type Response } from 'express';
import type { Deps } from '../app/deps.js';
import { findActiveKeyByHash } from '../db/queries/api-keys.js';
import { sha256 } from '../domain/tokens.js';
import { basicCredentials } from './basic-auth.js';

export const BULL_BOARD_PATH = '/admin/queues';

export const BULL_BOARD_CSP = {
  defaultSrc: ["'self'"],
  scriptSrc: ["'self'", "'unsafe-inline'"],
  styleSrc: ["'self'", "'unsafe-inline'"],
  imgSrc: ["'self'", 'data:'],
  fontSrc: ["'self'", 'data:'],
  connectSrc: ["'self'"],
  frameAncestors: ["'none'"],
  formAction: ["'self'"],
};

/**
 * Bull Board over every queue, for admins only: HTTP Basic, user `admin`, password = an admin API
 * key. Read-only unless BULL_BOARD_WRITE=true, and never driven from another site: the browser
 * sends Basic credentials along with a cross-site form post.
 */
export function bullBoardRoutes(deps: Deps): Router {
  const serverAdapter = new ExpressAdapter();
  serverAdapter.setBasePath(BULL_BOARD_PATH);
  const readOnlyMode = !deps.config.BULL_BOARD_WRITE;
  createBullBoard({ queues: deps.queues.all().map((q) => new BullMQAdapter(q, { readOnlyMode })), serverAdapter, options: { uiConfig: { boardTitle: 'MPS queues' } } });
  const router = Router();
  router.use(BULL_BOARD_PATH, sameOriginWrites, adminBasicAuth(deps), serverAdapter.getRouter());
  return router;
}

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

/** Refuses a state-changing request that a browser marks as coming from another site or origin. */
export function sameOriginWrites(req: Request, res: Response, next: NextFunction) {
  if (SAFE_METHODS.has(req.method)) return next();
  const site = req.get('sec-fetch-site');
  const origin = req.get('origin');
  const crossSite = (site !== undefined && site !== 'same-origin' && site !== 'none') || (origin !== undefined && !sameHost(origin, req.get('host')));
  if (!crossSite) return next();
  res.status(403).json({ error: { code: 'FORBIDDEN', message: 'Cross-site requests may not change queues', details: {}, request_id: req.id } });
}

function sameHost(origin: string, host: string | undefined): boolean {
  try {
    return host !== undefined && new URL(origin).host === host;
  } catch {
    return false;
  }
}

function adminBasicAuth(deps: Pick<Deps, 'db'>) {
  return async (req: Request, res: Response, next: NextFunction) => {
    const { user, password } = basicCredentials(req) ?? {};
    const key = user === 'admin' && password ? await findActiveKeyByHash(deps.db, sha256(password)) : undefined;
    if (key?.role === 'admin') return next();
    res.setHeader('WWW-Authenticate', 'Basic realm="MPS queues", charset="UTF-8"');
    res.status(401).json({ error: { code: 'UNAUTHENTICATED', message: 'Bull Board needs user "admin" and an admin API key as password', details: {}, request_id: req.id } });
  };
}
