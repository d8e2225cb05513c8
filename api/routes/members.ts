import { Router } from 'express';
import type { Deps } from '../../app/deps.js';
import type { Db } from '../../db/knex.js';
import { listIdentities } from '../../db/queries/identities.js';
import { loadLevels } from '../../db/queries/levels.js';
import { listCardsOfMember } from '../../db/queries/member-cards.js';
import type { MemberProfileRow } from '../../db/queries/members.js';
import { cardRateMilli } from '../../domain/card-rate.js';
import type { Level } from '../../domain/levels.js';
import { parse } from '../../domain/validate.js';
import { addIdentity, createMember, issueMemberToken, readableMember, revokeAllMemberTokens } from '../../services/members.js';
import { changeStatus, statusActions } from '../../services/status.js';
import { allow, principalOf } from '../middleware/auth.js';
import { callerOf, idParam } from '../route-helpers.js';
import { reasonBody } from '../schemas/common.js';
import { createMemberBody, emptyBody, identityBody } from '../schemas/members.js';
import { cardJson, iso, memberJson } from '../serializers.js';
import { identityJson } from '../views.js';

async function memberView(db: Db, member: MemberProfileRow, levels: readonly Level[], config: Deps['config']) {
  const [cards, identities] = await Promise.all([listCardsOfMember(db, member.id), listIdentities(db, member.id)]);
  return memberJson(member, {
    cards: cards.map((c) => ({ ...cardJson(c, cardRateMilli(c, levels), config), role: c.binding_role })),
    identities: identities.map(identityJson),
  });
}

export function memberRoutes(deps: Deps): Router {
  const router = Router();
  const { db } = deps;

  router.post('/members', allow('admin', 'app'), async (req, res) => {
    const member = await createMember(db, callerOf(req), parse(createMemberBody, req.body));
    res.status(201).json(await memberView(db, member, await loadLevels(db), deps.config));
  });

  router.get('/members/:id', allow('admin', 'app', 'member'), async (req, res) => {
    const member = await readableMember(db, principalOf(req), idParam(req, 'id', 'member'));
    res.json(await memberView(db, member, await loadLevels(db), deps.config));
  });

  router.post('/members/:id/identities', allow('admin', 'app'), async (req, res) => {
    const identity = await addIdentity(db, callerOf(req), idParam(req, 'id', 'member'), parse(identityBody, req.body));
    res.status(201).json({ ...identityJson(identity), member_id: identity.member_id });
  });

  router.post('/members/:id/tokens', allow('admin', 'app'), async (req, res) => {
    const id = idParam(req, 'id', 'member');
    parse(emptyBody, req.body);
    const { row, key } = await issueMemberToken(deps, callerOf(req), id);
    res.status(201).json({ token: key, expires_at: iso(row.expires_at) });
  });

  router.delete('/members/:id/tokens', allow('admin', 'app'), async (req, res) => {
    await revokeAllMemberTokens(db, callerOf(req), idParam(req, 'id', 'member'));
    res.status(204).end();
  });

  for (const action of statusActions('member')) {
    router.post(`/members/:id/${action}`, allow('admin'), async (req, res) => {
      const { reason } = parse(reasonBody, req.body);
      const member = await changeStatus(db, callerOf(req), 'member', action, idParam(req, 'id', 'member'), reason);
      res.json(await memberView(db, member, await loadLevels(db), deps.config));
    });
  }

  return router;
}
