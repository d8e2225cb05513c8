import { randomBytes } from 'node:crypto';
import type { Deps } from '../app/deps.js';
import type { Db, PageRequest } from '../db/knex.js';
import type { IdentityRow } from '../db/queries/identities.js';
import { loadLevels } from '../db/queries/levels.js';
import { cardsHeldBy, contactConflict, identitiesOf, insertProfileChange, searchMembers, updateMemberProfile, type HeldCard, type ProfileFields } from '../db/queries/member-directory.js';
import { lockMember, type MemberProfileRow } from '../db/queries/members.js';
import { canonicalJson } from '../domain/audit-chain.js';
import { AppError, forbidden, notFound } from '../domain/errors.js';
import type { Level } from '../domain/levels.js';
import type { Caller, Principal } from '../domain/principal.js';
import { sha256 } from '../domain/tokens.js';
import { auditBy } from './audit.js';

/** A member with what its JSON shows besides the profile: the cards it holds and its external identities. */
export type MemberDetails = MemberProfileRow & { cursor_t?: string; cards: HeldCard[]; identities: IdentityRow[] };

/**
 * 409 MEMBER_EXISTS for a unique violation of a phone or email (any other error is returned as
 * is): the unique indexes decide, so two members racing for one phone cannot both get it.
 */
export function memberExists(err: unknown): unknown {
  const field = contactConflict(err);
  return field ? new AppError('MEMBER_EXISTS', `Another member has this ${field}`, { field }) : err;
}

async function withDetails<M extends MemberProfileRow>(db: Db, members: M[]): Promise<(M & Pick<MemberDetails, 'cards' | 'identities'>)[]> {
  const ids = members.map((m) => m.id);
  const [cards, identities] = await Promise.all([cardsHeldBy(db, ids), identitiesOf(db, ids)]);
  return members.map((m) => ({ ...m, cards: cards.filter((c) => c.holder_id === m.id), identities: identities.filter((i) => i.member_id === m.id) }));
}

export interface MemberLookup extends PageRequest {
  phone?: string;
  email?: string;
  identity?: { provider: string; externalId: string };
  /** Name prefix: admin keys only. */
  q?: string;
  status?: MemberProfileRow['status'];
}

/**
 * The member directory (GET /v1/members). App keys look members up by what they know of them
 * (phone, email, or an external identity: exact, on the primary, so a member just made is found);
 * admins may also search by name prefix or list everyone (from the replica when there is one).
 * Up to limit + 1 members, newest first, each with its cards and identities, and the level table
 * their cards' rates come from.
 */
export async function findMembers(deps: Pick<Deps, 'db' | 'dbRead'>, principal: Principal, input: MemberLookup): Promise<{ members: MemberDetails[]; levels: Level[] }> {
  const exact = input.phone !== undefined || input.email !== undefined || input.identity !== undefined;
  if (principal.role !== 'admin') {
    if (input.q !== undefined || input.status !== undefined) throw forbidden('Searching members by name or listing them by status is for admin keys; look a member up by phone, email, or provider and external_id');
    if (!exact) {
      throw new AppError('VALIDATION_ERROR', 'Give phone, email, or provider and external_id to look a member up', { issues: [{ field: 'query', message: 'needs phone, email, or provider and external_id' }] });
    }
  }
  const db = exact ? deps.db : deps.dbRead;
  const rows = await searchMembers(db, { phone: input.phone, email: input.email, identity: input.identity, namePrefix: input.q, status: input.status, limit: input.limit, cursor: input.cursor });
  const [members, levels] = await Promise.all([withDetails(db, rows), loadLevels(db)]);
  return { members, levels };
}

export interface MemberChanges {
  name?: string;
  phone?: string | null;
  email?: string | null;
}

/**
 * Corrects a member's name, phone or email (PATCH /v1/members/:id): admin and app keys for any
 * member, a member token for itself only (any other member is 404, as if absent). A phone or
 * email another member holds is 409 MEMBER_EXISTS. The audit event names the fields changed and
 * points at the erasable record of their before and after values (member_profile_changes), with a
 * salted digest of them: audit events are kept forever and hash-chained, personal data is not.
 * Nothing that differs from what is stored: no write, no event.
 */
export async function updateMember(deps: Pick<Deps, 'db'>, caller: Caller, input: { memberId: string; changes: MemberChanges }): Promise<{ member: MemberDetails; levels: Level[] }> {
  const { memberId, changes } = input;
  const { principal } = caller;
  if (principal.role === 'member' && principal.memberId !== memberId) throw notFound('member');
  if (principal.role === 'merchant') throw notFound('member');
  const member = await deps.db
    .transaction(async (trx) => {
      const current = await lockMember(trx, memberId);
      if (!current) throw notFound('member');
      if (current.status === 'erased') throw new AppError('UNPROCESSABLE', 'The member is erased');
      const before: ProfileFields = {};
      const after: ProfileFields = {};
      for (const field of ['name', 'phone', 'email'] as const) {
        const value = changes[field];
        if (value === undefined || value === current[field]) continue;
        (before as Record<string, unknown>)[field] = current[field];
        (after as Record<string, unknown>)[field] = value;
      }
      const changed = Object.keys(after);
      if (!changed.length) return current;
      const row = await updateMemberProfile(trx, memberId, after);
      const salt = randomBytes(16).toString('hex');
      const record = await insertProfileChange(trx, { member_id: memberId, before, after, salt, api_key_id: principal.keyId });
      await auditBy(trx, caller, {
        action: 'member.update',
        objectType: 'member',
        objectId: memberId,
        context: { changed, change_id: record.id, digest: sha256(`${salt}.${canonicalJson({ before, after })}`) },
      });
      return row;
    })
    .catch((err: unknown) => {
      throw memberExists(err);
    });
  const [[details], levels] = await Promise.all([withDetails(deps.db, [member]), loadLevels(deps.db)]);
  return { member: details!, levels };
}
