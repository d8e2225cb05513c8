import type { Db } from '../knex.js';

export interface MemberRow {
  id: string;
  member_no: string;
  name: string;
  phone: string | null;
  email: string | null;
  status: string;
  created_at: Date;
}

export interface MemberProfileRow extends MemberRow {
  status: 'active' | 'suspended' | 'erased';
  erased_at: Date | null;
  updated_at: Date;
}

export async function insertMember(db: Db, member: { name: string; phone?: string | null; email?: string | null }): Promise<MemberProfileRow> {
  const [row] = await db<MemberProfileRow>('member_profiles')
    .insert({ name: member.name, phone: member.phone ?? null, email: member.email ?? null } as never)
    .returning('*');
  return row!;
}

export async function findMember(db: Db, id: string): Promise<MemberProfileRow | undefined> {
  return db<MemberProfileRow>('member_profiles').where({ id }).first();
}

export async function lockMember(trx: Db, id: string): Promise<MemberProfileRow | undefined> {
  return trx<MemberProfileRow>('member_profiles').where({ id }).forUpdate().first();
}

export async function setMemberStatus(db: Db, id: string, status: MemberProfileRow['status']): Promise<MemberProfileRow> {
  const [row] = await db<MemberProfileRow>('member_profiles').where({ id }).update({ status, updated_at: db.fn.now() } as never).returning('*');
  return row!;
}
