import { Router } from 'express';
import type { Deps } from '../../app/deps.js';
import { listLevelRows } from '../../db/queries/levels.js';
import { replaceLevels } from '../../services/levels.js';
import { allow } from '../middleware/auth.js';
import { callerOf } from '../route-helpers.js';
import { putLevelsBody } from '../schemas/levels.js';
import { parse } from '../../domain/validate.js';
import { levelJson } from '../views.js';

export function levelRoutes(deps: Deps): Router {
  const router = Router();
  const { db } = deps;

  router.get('/levels', allow('admin'), async (_req, res) => {
    res.json({ data: (await listLevelRows(db)).map(levelJson) });
  });

  router.put('/levels', allow('admin'), async (req, res) => {
    const { levels } = parse(putLevelsBody, req.body);
    res.json({ data: (await replaceLevels(db, callerOf(req), levels)).map(levelJson) });
  });

  return router;
}
