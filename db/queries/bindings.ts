import type { Db, Statement } from '../knex.js';

export type BindingRole = 'owner' | 'admin' | 'member' | 'viewer';

export interface BindingRow {
  id: string;
  card_id: string;
  member_id: string;
  role: BindingRole;
  created_at: Date;
}

export async function insertBinding(db: Db, binding: { card_id: string; member_id: string; role: BindingRole }): Promise<BindingRow> {
  const [row] = await db<BindingRow>('card_bindings').insert(binding).returning('*');
  return row!;
}

export async function findBinding(db: Db, cardId: string, memberId: string): Promise<BindingRow | undefined> {
  return db<BindingRow>('card_bindings').where({ card_id: cardId, member_id: memberId }).first();
}

export async function setBindingRole(db: Db, id: string, role: BindingRole): Promise<BindingRow> {
  const [row] = await db<BindingRow>('card_bindings').where({ id }).update({ role }).returning('*');
  return row!;
}

export async function listBindings(db: Db, cardId: string): Promise<BindingRow[]> {
  return db<BindingRow>('card_bindings').where({ card_id: cardId }).orderBy([{ column: 'created_at' }, { column: 'id' }]);
}

export async function countBindings(db: Db, cardId: string): Promise<number> {
  const row = await db('card_bindings').where({ card_id: cardId }).count<{ n: string | number }>({ n: '*' }).first();
  return Number(row?.n ?? 0);
}

/**
 * A replacement's bindings, as statements to run with its other writes: every member bound to the
 * old card is bound to the new one with the same role; the owner also keeps its binding to the old
 * card, so it still sees it (closed, and which card replaced it).
 */
export function moveBindings(trx: Db, fromCardId: string, toCardId: string, ownerMemberId: string): Statement[] {
  return [
    trx('card_bindings').where({ card_id: fromCardId }).whereNot({ member_id: ownerMemberId }).update({ card_id: toCardId }).toSQL(),
    trx('card_bindings').insert({ card_id: toCardId, member_id: ownerMemberId, role: 'owner' }).toSQL(),
  ];
}

export async function deleteBinding(db: Db, cardId: string, memberId: string): Promise<number> {
  return db('card_bindings').where({ card_id: cardId, member_id: memberId }).del();
}
