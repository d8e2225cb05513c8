import type { Deps } from '../app/deps.js';
import type { Db } from '../db/knex.js';
import { createApiKey, revokeMemberTokens, type ApiKeyRow } from '../db/queries/api-keys.js';
import { insertBinding } from '../db/queries/bindings.js';
import { insertIdentity, type IdentityRow } from '../db/queries/identities.js';
import { insertCard } from '../db/queries/member-cards.js';
import { contactConflict } from '../db/queries/member-directory.js';
import { findMember, insertMember, lockMember, type MemberProfileRow } from '../db/queries/members.js';
import { isUniqueViolation } from '../db/pg-errors.js';
import { AppError, conflict, notFound } from '../domain/errors.js';
import { requireActiveMember } from '../domain/may-act.js';
import type { Caller, Principal } from '../domain/principal.js';
import { auditBy } from './audit.js';
import { memberExists } from './member-directory.js';

// A phone or email in use is MEMBER_EXISTS (services/member-directory.ts); any other unique violation is the identity's.
const identityConflict = (err: unknown) =>
  contactConflict(err)
    ? memberExists(err)
    : isUniqueViolation(err)
      ? conflict('This external identity is already bound, or the member already has one from this provider', { field: 'identity' })
      : err;

export interface NewMember {
  name: string;
  phone?: string;
  email?: string;
  identity?: { provider: string; external_id: string };
}

/** A member with its standard card from the start; the owner binding is what access checks read. */
export async function createMember(db: Db, caller: Caller, input: NewMember): Promise<MemberProfileRow> {
  return db
    .transaction(async (trx) => {
      const row = await insertMember(trx, input);
      const card = await insertCard(trx, { type: 'standard', owner_member_id: row.id });
      await insertBinding(trx, { card_id: card.id, member_id: row.id, role: 'owner' });
      if (input.identity) await insertIdentity(trx, { member_id: row.id, ...input.identity });
      await auditBy(trx, caller, { action: 'member.create', objectType: 'member', objectId: row.id, context: { card_id: card.id, identity_provider: input.identity?.provider ?? null } });
      return row;
    })
    .catch((err: unknown) => {
      throw identityConflict(err);
    });
}

/** Admin and app keys read every member; a member token only itself (others are 404, as if absent). */
export async function readableMember(db: Db, principal: Principal, id: string): Promise<MemberProfileRow> {
  if (principal.role === 'member' && principal.memberId !== id) throw notFound('member');
  const member = await findMember(db, id);
  if (!member) throw notFound('member');
  return member;
}

/** Binds an external identity (one per provider per member, each identity to one member). */
export async function addIdentity(db: Db, caller: Caller, memberId: string, identity: { provider: string; external_id: string }): Promise<IdentityRow> {
  return db
    .transaction(async (trx) => {
      const member = await lockMember(trx, memberId);
      if (!member) throw notFound('member');
      if (member.status === 'erased') throw new AppError('UNPROCESSABLE', 'The member is erased');
      const row = await insertIdentity(trx, { member_id: memberId, ...identity });
      await auditBy(trx, caller, { action: 'member.identity_add', objectType: 'member', objectId: memberId, context: { identity_id: row.id, provider: row.provider } });
      return row;
    })
    .catch((err: unknown) => {
      throw identityConflict(err);
    });
}

/** A member token for the member-app, valid MEMBER_TOKEN_TTL_S; an active member only. */
export async function issueMemberToken({ db, config }: Deps, caller: Caller, memberId: string): Promise<{ row: ApiKeyRow; key: string }> {
  return db.transaction(async (trx) => {
    const member = await lockMember(trx, memberId);
    if (!member) throw notFound('member');
    requireActiveMember(member);
    const created = await createApiKey(trx, { role: 'member', memberId, name: 'member token', expiresInSeconds: config.MEMBER_TOKEN_TTL_S });
    await auditBy(trx, caller, { action: 'member.token_issue', objectType: 'member', objectId: memberId, context: { api_key_id: created.row.id, prefix: created.row.prefix } });
    return created;
  });
}

/** A lost phone or a signed-out member: every token of the member stops working (within AUTH_CACHE_TTL_MS). */
export async function revokeAllMemberTokens(db: Db, caller: Caller, memberId: string): Promise<void> {
  await db.transaction(async (trx) => {
    if (!(await lockMember(trx, memberId))) throw notFound('member');
    const revoked = await revokeMemberTokens(trx, memberId);
    await auditBy(trx, caller, { action: 'member.tokens_revoke', objectType: 'member', objectId: memberId, context: { revoked } });
  });
}
