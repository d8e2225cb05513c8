import { Router } from 'express';
import type { Deps } from '../../app/deps.js';
import { eraseMember, exportMember } from '../../services/privacy.js';
import { allow } from '../middleware/auth.js';
import { callerOf, idParam } from '../route-helpers.js';

/** Admin data export and erasure of a member (DESIGN.md "Privacy"). */
export function privacyRoutes(deps: Deps): Router {
  const router = Router();

  router.get('/members/:id/export', allow('admin'), async (req, res) => {
    const id = idParam(req, 'id', 'member');
    const data = await exportMember(deps, callerOf(req), id);
    res.setHeader('Content-Disposition', `attachment; filename="member-${data.profile.member_no}.json"`);
    res.json({ exported_at: new Date().toISOString(), member_id: id, ...data });
  });

  router.post('/members/:id/erase', allow('admin'), async (req, res) => {
    const erased = await eraseMember(deps.db, callerOf(req), idParam(req, 'id', 'member'));
    res.json({ id: erased.id, member_no: erased.member_no, status: 'erased' });
  });

  return router;
}
