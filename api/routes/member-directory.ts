import { Router } from 'express';
import type { Deps } from '../../app/deps.js';
import { cardRateMilli } from '../../domain/card-rate.js';
import type { Level } from '../../domain/levels.js';
import { findMembers, updateMember, type MemberDetails } from '../../services/member-directory.js';
import { allow, principalOf } from '../middleware/auth.js';
import { decodeCursor, page } from '../pagination.js';
import { callerOf, idParam } from '../route-helpers.js';
import { memberLookupQuery, updateMemberBody } from '../schemas/member-directory.js';
import { cardJson, memberJson } from '../serializers.js';
import { parse } from '../../domain/validate.js';
import { identityJson } from '../views.js';

/** The member object of API.md "Objects": the profile, the cards it holds (with its role on each) and its identities. */
function memberDetailsJson(m: MemberDetails, levels: readonly Level[], config: Deps['config']) {
  return memberJson(m, {
    cards: m.cards.map((c) => ({ ...cardJson(c, cardRateMilli(c, levels), config), role: c.binding_role })),
    identities: m.identities.map(identityJson),
  });
}

/** API.md "Directory, keys and reports": finding members (GET /v1/members) and correcting them (PATCH /v1/members/:id). */
export function memberDirectoryRoutes(deps: Deps): Router {
  const router = Router();

  router.get('/members', allow('admin', 'app'), async (req, res) => {
    const q = parse(memberLookupQuery, req.query, 'query');
    const identity = q.provider !== undefined && q.external_id !== undefined ? { provider: q.provider, externalId: q.external_id } : undefined;
    const { members, levels } = await findMembers(deps, principalOf(req), { phone: q.phone, email: q.email, identity, q: q.q, status: q.status, limit: q.limit, cursor: decodeCursor(q.cursor) });
    res.json(page(members, q.limit, (m) => memberDetailsJson(m, levels, deps.config)));
  });

  router.patch('/members/:id', allow('admin', 'app', 'member'), async (req, res) => {
    const memberId = idParam(req, 'id', 'member');
    const changes = parse(updateMemberBody, req.body);
    const { member, levels } = await updateMember(deps, callerOf(req), { memberId, changes });
    res.json(memberDetailsJson(member, levels, deps.config));
  });

  return router;
}
