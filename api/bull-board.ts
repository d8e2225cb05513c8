import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { ExpressAdapter } from '@bull-board/express';
import { Router, type NextFunction, type Request, type Response } from 'express';
import type { Deps } from '../config/deps.js';
import { findActiveKeyByHash } from '../db/queries/api-keys.js';
import { sha256 } from '../domain/tokens.js';

export const BULL_BOARD_PATH = '/admin/queues';

/** Bull Board over every queue, for admins only: HTTP Basic, user `admin`, password = an admin API key. */
export function bullBoardRoutes(deps: Deps): Router {
  const serverAdapter = new ExpressAdapter();
  serverAdapter.setBasePath(BULL_BOARD_PATH);
  createBullBoard({ queues: deps.queues.all().map((q) => new BullMQAdapter(q)), serverAdapter, options: { uiConfig: { boardTitle: 'MPS queues' } } });
  const router = Router();
  router.use(BULL_BOARD_PATH, adminBasicAuth(deps), serverAdapter.getRouter());
  return router;
}

function adminBasicAuth(deps: Pick<Deps, 'db'>) {
  return async (req: Request, res: Response, next: NextFunction) => {
    const encoded = /^Basic ([A-Za-z0-9+/=]+)$/.exec(req.get('authorization') ?? '')?.[1];
    const [user, password] = encoded ? Buffer.from(encoded, 'base64').toString('utf8').split(/:(.*)/s) : [];
    const key = user === 'admin' && password ? await findActiveKeyByHash(deps.db, sha256(password)) : undefined;
    if (key?.role === 'admin') return next();
    res.setHeader('WWW-Authenticate', 'Basic realm="MPS queues", charset="UTF-8"');
    res.status(401).json({ error: { code: 'UNAUTHENTICATED', message: 'Bull Board needs user "admin" and an admin API key as password', details: {}, request_id: req.id } });
  };
}
