import type { Db } from '../knex.js';

export interface IdentityRow {
  id: string;
  member_id: string;
  provider: string;
  external_id: string;
  created_at: Date;
}

/** Unique per (provider, external_id) and per (member, provider): a duplicate raises 23505. */
export async function insertIdentity(db: Db, identity: { member_id: string; provider: string; external_id: string }): Promise<IdentityRow> {
  const [row] = await db<IdentityRow>('member_external_identities').insert(identity).returning('*');
  return row!;
}

export async function listIdentities(db: Db, memberId: string): Promise<IdentityRow[]> {
  return db<IdentityRow>('member_external_identities').where({ member_id: memberId }).orderBy([{ column: 'created_at' }, { column: 'id' }]);
}
