import { Router } from 'express';
import type { Deps } from '../../app/deps.js';
import { AppError, notFound } from '../../domain/errors.js';
import { anonymizeMember, collectMemberData } from '../../db/queries/member-data.js';
import { lockMember } from '../../db/queries/members.js';
import { allow } from '../middleware/auth.js';
import { idParam, recordAudit } from '../route-helpers.js';

/** Admin data export and erasure of a member (DESIGN.md "Privacy"). */
export function privacyRoutes(deps: Deps): Router {
  const router = Router();
  const { db, dbRead } = deps;

  router.get('/members/:id/export', allow('admin'), async (req, res) => {
    const id = idParam(req, 'id', 'member');
    // The export reads the replica when there is one; its audit row is written on the primary.
    const data = await collectMemberData(dbRead, id);
    if (!data.profile) throw notFound('member');
    await db.transaction((trx) => recordAudit(trx, req, { action: 'member.export', objectType: 'member', objectId: id }));
    res.setHeader('Content-Disposition', `attachment; filename="member-${data.profile.member_no}.json"`);
    res.json({ exported_at: new Date().toISOString(), member_id: id, ...data });
  });

  router.post('/members/:id/erase', allow('admin'), async (req, res) => {
    const id = idParam(req, 'id', 'member');
    const erased = await db.transaction(async (trx) => {
      const member = await lockMember(trx, id);
      if (!member) throw notFound('member');
      if (member.status === 'erased') throw new AppError('CONFLICT', 'The member is already erased');
      await anonymizeMember(trx, id);
      await recordAudit(trx, req, { action: 'member.erase', objectType: 'member', objectId: id });
      return member;
    });
    res.json({ id: erased.id, member_no: erased.member_no, status: 'erased' });
  });

  return router;
}
