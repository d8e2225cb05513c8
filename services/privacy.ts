import type { Deps } from '../app/deps.js';
import type { Db } from '../db/knex.js';
import { anonymizeMember, collectMemberData } from '../db/queries/member-data.js';
import { lockMember, type MemberProfileRow } from '../db/queries/members.js';
import { conflict, notFound } from '../domain/errors.js';
import type { Caller } from '../domain/principal.js';
import { auditBy } from './audit.js';

export type MemberData = Awaited<ReturnType<typeof collectMemberData>>;

/** Everything MPS holds about a member (DESIGN.md "Privacy"), read from the replica when there is one; the export is audited on the primary. */
export async function exportMember({ db, dbRead }: Deps, caller: Caller, id: string): Promise<MemberData> {
  const data = await collectMemberData(dbRead, id);
  if (!data.profile) throw notFound('member');
  await db.transaction((trx) => auditBy(trx, caller, { action: 'member.export', objectType: 'member', objectId: id }));
  return data;
}

/** Erases a member's personal data, once (409 after); the financial records stay. Returns the member as it was. */
export async function eraseMember(db: Db, caller: Caller, id: string): Promise<MemberProfileRow> {
  return db.transaction(async (trx) => {
    const member = await lockMember(trx, id);
    if (!member) throw notFound('member');
    if (member.status === 'erased') throw conflict('The member is already erased');
    await anonymizeMember(trx, id);
    await auditBy(trx, caller, { action: 'member.erase', objectType: 'member', objectId: id });
    return member;
  });
}
