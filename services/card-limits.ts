import type { Deps } from '../app/deps.js';
import { cardLimitDefaults } from '../config/env.js';
import { limitChangeRefusal, type CardLimits } from '../domain/card-limits.js';
import { paysFromBalance } from '../domain/discount.js';
import { AppError, forbidden, notFound } from '../domain/errors.js';
import type { Caller } from '../domain/principal.js';
import { lockCard, ownLimits, setCardLimits, type MemberCardRow } from '../db/queries/member-cards.js';
import { auditBy } from './audit.js';
import { cardFor, refuseIfClosed } from './card-access.js';

/**
 * Sets a card's own limits (API.md PUT /v1/cards/:id/limits): the named ones change (null: back
 * to the platform default), the others stay. Admin and app keys set any; a member only on a card
 * it owns, and never above the platform's default (domain/card-limits.ts limitChangeRefusal).
 * Standard cards pay with outside money and have no limits (422). Under the card lock, so a
 * payment being decided sees the limits from before or after, never half; audited.
 */
export async function setLimits(deps: Deps, caller: Caller, cardId: string, change: Partial<CardLimits>): Promise<MemberCardRow> {
  const { principal } = caller;
  const { card, bindingRole } = await cardFor(deps.db, principal, cardId, 'read');
  if (principal.role === 'member' && bindingRole !== 'owner') throw forbidden("Only the card's owner, an app or an admin may set its limits");
  if (!paysFromBalance(card.type)) throw new AppError('UNPROCESSABLE', 'A standard card pays with outside money: it has no limits');
  const refused = limitChangeRefusal(change, cardLimitDefaults(deps.config), principal.role !== 'member');
  if (refused) throw new AppError(refused.refused, refused.message, refused.details);
  return deps.db.transaction(async (trx) => {
    const locked = await lockCard(trx, card.id);
    if (!locked) throw notFound('card');
    refuseIfClosed(locked);
    const row = await setCardLimits(trx, card.id, change);
    await auditBy(trx, caller, { action: 'card.limits', objectType: 'card', objectId: card.id, context: { before: ownLimits(locked), after: ownLimits(row) } });
    return row;
  });
}
