import { Router, type Request } from 'express';
import type { Deps } from '../../app/deps.js';
import type { Db } from '../../db/knex.js';
import { createApiKey, revokeMemberTokens } from '../../db/queries/api-keys.js';
import { insertBinding } from '../../db/queries/bindings.js';
import { insertIdentity, listIdentities } from '../../db/queries/identities.js';
import { loadLevels } from '../../db/queries/levels.js';
import { insertCard, listCardsOfMember } from '../../db/queries/member-cards.js';
import { findMember, insertMember, lockMember, type MemberProfileRow } from '../../db/queries/members.js';
import { isUniqueViolation } from '../../db/pg-errors.js';
import { contactConflict } from '../../db/queries/member-directory.js';
import { memberExists } from '../../services/member-directory.js';
import { cardRateMilli } from '../../domain/card-rate.js';
import { AppError, conflict, notFound } from '../../domain/errors.js';
import type { Level } from '../../domain/levels.js';
import { allow, principalOf } from '../middleware/auth.js';
import { callerOf, idParam, recordAudit } from '../route-helpers.js';
import { requireActiveMember } from '../../domain/may-act.js';
import { changeStatus, statusActions } from '../../services/status.js';
import { reasonBody } from '../schemas/common.js';
import { createMemberBody, emptyBody, identityBody } from '../schemas/members.js';
import { cardJson, iso, memberJson } from '../serializers.js';
import { parse } from '../../domain/validate.js';
import { identityJson } from '../views.js';

// A phone or email in use is MEMBER_EXISTS (services/member-directory.ts); any other unique violation is the identity's.
const identityConflict = (err: unknown) =>
  contactConflict(err)
    ? memberExists(err)
    : isUniqueViolation(err)
      ? conflict('This external identity is already bound, or the member already has one from this provider', { field: 'identity' })
      : err;

async function memberView(db: Db, member: MemberProfileRow, levels: readonly Level[]) {
  const [cards, identities] = await Promise.all([listCardsOfMember(db, member.id), listIdentities(db, member.id)]);
  return memberJson(member, {
    cards: cards.map((c) => ({ ...cardJson(c, cardRateMilli(c, levels)), role: c.binding_role })),
    identities: identities.map(identityJson),
  });
}

export function memberRoutes(deps: Deps): Router {
  const router = Router();
  const { db, config } = deps;

  router.post('/members', allow('admin', 'app'), async (req, res) => {
    const body = parse(createMemberBody, req.body);
    const member = await db
      .transaction(async (trx) => {
        const row = await insertMember(trx, body);
        // Every member has its standard card from the start; the owner binding is what access checks read.
        const card = await insertCard(trx, { type: 'standard', owner_member_id: row.id });
        await insertBinding(trx, { card_id: card.id, member_id: row.id, role: 'owner' });
        if (body.identity) await insertIdentity(trx, { member_id: row.id, ...body.identity });
        await recordAudit(trx, req, { action: 'member.create', objectType: 'member', objectId: row.id, context: { card_id: card.id, identity_provider: body.identity?.provider ?? null } });
        return row;
      })
      .catch((err: unknown) => {
        throw identityConflict(err);
      });
    res.status(201).json(await memberView(db, member, await loadLevels(db)));
  });

  router.get('/members/:id', allow('admin', 'app', 'member'), async (req, res) => {
    const member = await readableMember(req);
    res.json(await memberView(db, member, await loadLevels(db)));
  });

  /** Admin and app keys read every member; a member token only itself (others are 404, as if absent). */
  async function readableMember(req: Request): Promise<MemberProfileRow> {
    const id = idParam(req, 'id', 'member');
    const principal = principalOf(req);
    if (principal.role === 'member' && principal.memberId !== id) throw notFound('member');
    const member = await findMember(db, id);
    if (!member) throw notFound('member');
    return member;
  }

  router.post('/members/:id/identities', allow('admin', 'app'), async (req, res) => {
    const id = idParam(req, 'id', 'member');
    const body = parse(identityBody, req.body);
    const identity = await db
      .transaction(async (trx) => {
        const member = await lockMember(trx, id);
        if (!member) throw notFound('member');
        if (member.status === 'erased') throw new AppError('UNPROCESSABLE', 'The member is erased');
        const row = await insertIdentity(trx, { member_id: id, ...body });
        await recordAudit(trx, req, { action: 'member.identity_add', objectType: 'member', objectId: id, context: { identity_id: row.id, provider: row.provider } });
        return row;
      })
      .catch((err: unknown) => {
        throw identityConflict(err);
      });
    res.status(201).json({ ...identityJson(identity), member_id: identity.member_id });
  });

  router.post('/members/:id/tokens', allow('admin', 'app'), async (req, res) => {
    const id = idParam(req, 'id', 'member');
    parse(emptyBody, req.body);
    const { row, key } = await db.transaction(async (trx) => {
      const member = await lockMember(trx, id);
      if (!member) throw notFound('member');
      requireActiveMember(member);
      const created = await createApiKey(trx, { role: 'member', memberId: id, name: 'member token', expiresInSeconds: config.MEMBER_TOKEN_TTL_S });
      await recordAudit(trx, req, { action: 'member.token_issue', objectType: 'member', objectId: id, context: { api_key_id: created.row.id, prefix: created.row.prefix } });
      return created;
    });
    res.status(201).json({ token: key, expires_at: iso(row.expires_at) });
  });

  /** A lost phone or a signed-out member: every token of the member stops working (within AUTH_CACHE_TTL_MS). */
  router.delete('/members/:id/tokens', allow('admin', 'app'), async (req, res) => {
    const id = idParam(req, 'id', 'member');
    await db.transaction(async (trx) => {
      const member = await lockMember(trx, id);
      if (!member) throw notFound('member');
      const revoked = await revokeMemberTokens(trx, id);
      await recordAudit(trx, req, { action: 'member.tokens_revoke', objectType: 'member', objectId: id, context: { revoked } });
    });
    res.status(204).end();
  });

  for (const action of statusActions('member')) {
    router.post(`/members/:id/${action}`, allow('admin'), async (req, res) => {
      const { reason } = parse(reasonBody, req.body);
      const member = await changeStatus(db, callerOf(req), 'member', action, idParam(req, 'id', 'member'), reason);
      res.json(await memberView(db, member, await loadLevels(db)));
    });
  }

  return router;
}
