import { Router } from 'express';
import type { Deps } from '../../app/deps.js';
import { listLevelRows, replaceLevelRows } from '../../db/queries/levels.js';
import { recomputeCardLevels } from '../../db/queries/member-cards.js';
import { allow } from '../middleware/auth.js';
import { recordAudit } from '../route-helpers.js';
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
    const rows = await db.transaction(async (trx) => {
      const replaced = await replaceLevelRows(trx, [...levels].sort((a, b) => a.level - b.level));
      // Stored levels follow the new thresholds at once, so no card shows a level the table no longer has.
      const moved = await recomputeCardLevels(trx);
      await recordAudit(trx, req, { action: 'levels.replace', objectType: 'membership_levels', objectId: 'all', context: { levels, cards_moved: moved } });
      return replaced;
    });
    res.json({ data: rows.map(levelJson) });
  });

  return router;
}
