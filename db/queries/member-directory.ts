import { newestFirst, type Db, type PageRequest } from '../knex.js';
import { isUniqueViolation } from '../pg-errors.js';
import type { IdentityRow } from './identities.js';
import type { MemberCardRow } from './member-cards.js';
import type { MemberProfileRow } from './members.js';

/** The unique indexes behind "phone and email are unique among members that are not erased". */
export const CONTACT_INDEXES = { phone: 'member_profiles_phone_key', email: 'member_profiles_email_key' } as const;
export type ContactField = keyof typeof CONTACT_INDEXES;

/** Which contact a unique violation was about (phone or email), or undefined for any other error. */
export function contactConflict(err: unknown): ContactField | undefined {
  return (Object.keys(CONTACT_INDEXES) as ContactField[]).find((field) => isUniqueViolation(err, CONTACT_INDEXES[field]));
}

export interface MemberSearch extends PageRequest {
  phone?: string;
  email?: string;
  identity?: { provider: string; externalId: string };
  /** Case-insensitive name prefix. */
  namePrefix?: string;
  status?: MemberProfileRow['status'];
}

/** LIKE's own characters taken literally. */
const likePrefix = (text: string) => `${text.toLowerCase().replace(/[\\%_]/g, (c) => `\\${c}`)}%`;

/**
 * Members by exact phone or email (compared as keys: mps_phone_key, mps_email_key, through the
 * unique indexes), by external identity, by name prefix, or all, newest first. Every way of
 * finding a member by what it is (contact, identity, name) skips erased members: what they were
 * called is gone, and so is every way to them by it.
 */
export async function searchMembers(db: Db, f: MemberSearch): Promise<(MemberProfileRow & { cursor_t: string })[]> {
  const q = db('member_profiles as p').select('p.*');
  newestFirst(db, q, 'p', f);
  if (f.status) q.where('p.status', f.status);
  const byWhatItIs = f.phone !== undefined || f.email !== undefined || f.identity !== undefined || f.namePrefix !== undefined;
  if (byWhatItIs) q.whereNot('p.status', 'erased');
  if (f.phone !== undefined) q.whereNotNull('p.phone').whereRaw('mps_phone_key(p.phone) = mps_phone_key(?)', [f.phone]);
  if (f.email !== undefined) q.whereNotNull('p.email').whereRaw('mps_email_key(p.email) = mps_email_key(?)', [f.email]);
  if (f.identity) {
    q.whereExists(
      db('member_external_identities as i').select(db.raw('1')).whereRaw('i.member_id = p.id').where({ 'i.provider': f.identity.provider, 'i.external_id': f.identity.externalId }),
    );
  }
  // Planned with the prefix's value (no prepared statement), so the text_pattern_ops index serves it.
  if (f.namePrefix !== undefined) q.whereRaw(`lower(p.name) LIKE ? ESCAPE '\\'`, [likePrefix(f.namePrefix)]);
  return q;
}

export type HeldCard = MemberCardRow & { holder_id: string; binding_role: string };

/** The cards each of `memberIds` owns or is bound to, with its role on each (owner for owned cards), oldest first. */
export async function cardsHeldBy(db: Db, memberIds: readonly string[]): Promise<HeldCard[]> {
  if (!memberIds.length) return [];
  const { rows } = await db.raw<{ rows: HeldCard[] }>(
    `SELECT c.*, c.owner_member_id AS holder_id, 'owner' AS binding_role FROM member_cards c WHERE c.owner_member_id = ANY (?::uuid[])
     UNION ALL
     SELECT c.*, b.member_id AS holder_id, b.role AS binding_role
       FROM card_bindings b JOIN member_cards c ON c.id = b.card_id
      WHERE b.member_id = ANY (?::uuid[]) AND c.owner_member_id <> b.member_id
     ORDER BY created_at, id`,
    [[...memberIds], [...memberIds]],
  );
  return rows;
}

export async function identitiesOf(db: Db, memberIds: readonly string[]): Promise<IdentityRow[]> {
  if (!memberIds.length) return [];
  return db<IdentityRow>('member_external_identities').whereIn('member_id', memberIds).orderBy([{ column: 'created_at' }, { column: 'id' }]);
}

export type ProfileFields = Partial<Pick<MemberProfileRow, 'name' | 'phone' | 'email'>>;

/** Writes profile fields; a phone or email another member holds raises 23505 on CONTACT_INDEXES. */
export async function updateMemberProfile(trx: Db, id: string, fields: ProfileFields): Promise<MemberProfileRow> {
  const [row] = await trx<MemberProfileRow>('member_profiles')
    .where({ id })
    .update({ ...fields, updated_at: trx.fn.now() } as never)
    .returning('*');
  return row!;
}

export interface ProfileChangeRow {
  id: string;
  member_id: string;
  before: ProfileFields;
  after: ProfileFields;
  salt: string;
  api_key_id: string | null;
  created_at: Date;
}

/** The erasable record of one correction's values (see the migration create_member_profile_changes). */
export async function insertProfileChange(trx: Db, change: Pick<ProfileChangeRow, 'member_id' | 'before' | 'after' | 'salt' | 'api_key_id'>): Promise<ProfileChangeRow> {
  const [row] = await trx<ProfileChangeRow>('member_profile_changes')
    .insert({ ...change, before: JSON.stringify(change.before), after: JSON.stringify(change.after) } as never)
    .returning('*');
  return row!;
}
