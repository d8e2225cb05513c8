import type { Db } from '../db/knex.js';
import type { BindingRole } from '../db/queries/bindings.js';
import { findCardAs, type CallerRole, type MemberCardRow } from '../db/queries/member-cards.js';
import { AppError, notFound } from '../domain/errors.js';
import type { Principal } from '../domain/principal.js';

/**
 * A closed card refuses everything with CARD_NOT_ACTIVE (API.md "Operator money tools"), saying
 * which card replaced it; call it on the row read under the card's lock.
 */
export function refuseIfClosed(card: { status: string; replaced_by?: string | null } | undefined): void {
  if (card?.status === 'closed') throw new AppError('CARD_NOT_ACTIVE', 'The card is closed', card.replaced_by ? { replaced_by: card.replaced_by } : undefined);
}

/** What the caller wants to do with a card: read it, pay or recharge with it, or manage its bindings. */
export type CardNeed = 'read' | 'pay' | 'manage';

const ROLES_FOR: Record<CardNeed, BindingRole[]> = {
  read: ['owner', 'admin', 'member', 'viewer'],
  pay: ['owner', 'admin', 'member'],
  manage: ['owner', 'admin'],
};

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * Loads a card the caller may use for `need`. Admin and app keys reach every card; a member only
 * cards it owns or is bound to (others are 404, never revealing that they exist), and a bound
 * member whose role is too low gets 403. Merchants never read cards directly. One read: the card
 * with the caller's binding.
 */
export async function cardFor(db: Db, principal: Principal, cardId: string, need: CardNeed): Promise<{ card: MemberCardRow; bindingRole: BindingRole | null }> {
  refuseUnreachable(principal, cardId);
  return accessTo(principal, need, await findCardAs(db, cardId, principal.memberId ?? null));
}

/** What cardFor refuses before reading: an id that is no card id, and a merchant. */
export function refuseUnreachable(principal: Principal, cardId: string): void {
  if (!UUID.test(cardId) || principal.role === 'merchant') throw notFound('card');
}

/** cardFor's judgement of a card read with the caller's own binding role (`caller_role`: null for a key or a stranger). */
export function accessTo<Card extends MemberCardRow>(principal: Principal, need: CardNeed, row: (Card & CallerRole) | undefined): { card: Card; bindingRole: BindingRole | null } {
  if (!row) throw notFound('card');
  const { caller_role: role, ...rest } = row;
  const card = rest as unknown as Card;
  if (principal.role === 'admin' || principal.role === 'app') return { card, bindingRole: null };
  if (!role) throw notFound('card');
  if (!ROLES_FOR[need].includes(role)) throw new AppError('FORBIDDEN', `A ${role} of this card may not do that`);
  return { card, bindingRole: role };
}

export const isUuid = (value: string) => UUID.test(value);
