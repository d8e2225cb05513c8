import type { CardType } from './discount.js';
import { refusal, type Refusal } from './decision.js';
import { AppError, type ErrorCode } from './errors.js';

/** What mayAct refuses a charge or a recharge with (a QR issue may also get NOT_FOUND or FORBIDDEN). */
export const ACT_REFUSALS = ['QR_EXPIRED_OR_INVALID', 'MERCHANT_SUSPENDED', 'MEMBER_SUSPENDED', 'VOUCHER_ALREADY_USED', 'CARD_NOT_ACTIVE', 'CARD_EXPIRED'] as const satisfies readonly ErrorCode[];

/** The card as the check needs it; `is_expired` is judged by the database clock. */
export interface ActingCard {
  type: CardType;
  status: string;
  is_expired: boolean;
}

/**
 * The statuses of who is involved. `undefined` means "not part of this check"; `null` means the
 * party was asked about but has no profile (so is not active).
 */
export interface ActingParties {
  ownerStatus?: string | null;
  actorStatus?: string | null;
  merchantStatus?: string | null;
}

/** Why the card is used: paying (a charge), recharging it, or issuing the QR a charge will use. */
export type ActPurpose = 'pay' | 'recharge' | 'issue-qr';

/**
 * Whether this card and these members may act, and if not, with which code (DESIGN.md §2). The
 * binding (`role` null: not bound) is checked only when given. The checks run in this order:
 * binding, merchant, members, card (a used voucher, then any other status, then expiry); QR issue
 * checks the member after the card, as it always has.
 */
export function mayAct(card: ActingCard, member: ActingParties, binding: { role: string | null } | undefined, purpose: ActPurpose): Refusal | null {
  if (binding) {
    if (purpose === 'issue-qr') {
      if (!binding.role) return refusal('NOT_FOUND', 'That member is not bound to this card');
      if (binding.role === 'viewer') return refusal('FORBIDDEN', 'A viewer of this card may not pay with it');
    } else if (!binding.role || binding.role === 'viewer') {
      return refusal('QR_EXPIRED_OR_INVALID', 'The QR code is no longer valid for this card');
    }
  }
  if (member.merchantStatus !== undefined && member.merchantStatus !== 'active') return refusal('MERCHANT_SUSPENDED', 'The merchant is suspended');
  if (purpose !== 'issue-qr') {
    const members = memberRefusal(member);
    if (members) return members;
  }
  if (card.type === 'voucher' && card.status === 'used') return refusal('VOUCHER_ALREADY_USED', 'The voucher has already been used');
  if (card.status !== 'active') return refusal('CARD_NOT_ACTIVE', `The card is ${card.status}`);
  if (card.is_expired) return refusal('CARD_EXPIRED', 'The card has expired');
  return purpose === 'issue-qr' ? memberRefusal(member) : null;
}

/** A presented QR: its row when live (nulls when it is not), judged at the moment it was presented. */
export interface PresentedQr {
  cardId: string | null;
  expiresAt: Date | null;
}

/**
 * Whether the QR presented at `presentedAt` (when the operation was accepted, so a queue backlog
 * never expires a valid scan) is a live token of this card: the first check of a charge and of a
 * top-up at the till.
 */
export function presentedQrRefusal(card: { id?: string } | undefined, qr: PresentedQr, presentedAt: Date): Refusal | null {
  if (!card || qr.cardId !== card.id || !qr.expiresAt || qr.expiresAt <= presentedAt) {
    return refusal('QR_EXPIRED_OR_INVALID', 'The QR code has expired or is not valid; ask the member to refresh it');
  }
  return null;
}

function memberRefusal(member: ActingParties): Refusal | null {
  const suspended = (status: string | null | undefined) => status !== undefined && status !== 'active';
  return suspended(member.ownerStatus) || suspended(member.actorStatus) ? refusal('MEMBER_SUSPENDED', 'The member is suspended') : null;
}

/** Suspended and erased members take no new cards, bindings or tokens (erased ones keep their id for the books). */
export function requireActiveMember(member: { status: string }): void {
  if (member.status === 'suspended') throw new AppError('MEMBER_SUSPENDED', 'The member is suspended');
  if (member.status !== 'active') throw new AppError('UNPROCESSABLE', `The member is ${member.status}`);
}
