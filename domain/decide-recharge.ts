import { refusal, type Refusal } from './decision.js';
import { isRechargeable, type CardType } from './discount.js';
import type { ErrorCode } from './errors.js';
import { ACT_REFUSALS, mayAct, presentedQrRefusal, type PresentedQr } from './may-act.js';
import { formatMinor } from './money.js';

/** Every code decideRecharge refuses with. */
export const RECHARGE_REFUSALS = ['RECHARGE_NOT_ALLOWED', ...ACT_REFUSALS, 'BALANCE_LIMIT_EXCEEDED'] as const satisfies readonly ErrorCode[];

export interface RechargeState {
  /** `id` is needed at the till only (the QR must be this card's). */
  card: { id?: string; type: CardType; status: string; is_expired: boolean; balance_minor: number } | undefined;
  ownerStatus: string | null;
  /** The member who recharges, when one is named (undefined when none is). */
  actorStatus?: string | null;
  /**
   * A top-up at the till (POST /v1/recharges): the member's presented QR, when it was presented,
   * the presenting member's binding role (null: not bound) and the merchant's status.
   */
  till?: { qr: PresentedQr; presentedAt: Date; payerRole: string | null; merchantStatus: string | null };
}

export interface RechargePlan {
  amountMinor: number;
  balanceDeltaMinor: number;
  balanceAfterMinor: number;
}

/** Prepaid and corporate cards only: checked before anything else is read. */
export function rechargeNotAllowed(card: { type: CardType } | undefined): Refusal | null {
  return !card || !isRechargeable(card.type) ? refusal('RECHARGE_NOT_ALLOWED', `Only prepaid and corporate cards can be recharged`) : null;
}

/**
 * A recharge (DESIGN.md §2), decided without I/O: prepaid and corporate only, resulting balance
 * within MAX_BALANCE, no points. At the till the QR comes first (as for a charge), and the
 * merchant and the presenting member's binding are checked with the card (mayAct).
 */
export function decideRecharge(state: RechargeState, request: { amountMinor: number }, rules: { maxBalanceMinor: number }): Refusal | RechargePlan {
  const { till } = state;
  // At the till the QR names the card: no live QR, no card.
  const invalidQr = till ? presentedQrRefusal(state.card, till.qr, till.presentedAt) : null;
  if (invalidQr) return invalidQr;
  const notAllowed = rechargeNotAllowed(state.card);
  if (notAllowed || !state.card) return notAllowed!;
  const { card } = state;
  const parties = { ownerStatus: state.ownerStatus, actorStatus: state.actorStatus, ...(till ? { merchantStatus: till.merchantStatus } : {}) };
  const refused = mayAct(card, parties, till ? { role: till.payerRole } : undefined, 'recharge');
  if (refused) return refused;
  if (card.balance_minor + request.amountMinor > rules.maxBalanceMinor) {
    return refusal('BALANCE_LIMIT_EXCEEDED', `A card may hold at most ${formatMinor(rules.maxBalanceMinor)}`, { balance: formatMinor(card.balance_minor) });
  }
  return { amountMinor: request.amountMinor, balanceDeltaMinor: request.amountMinor, balanceAfterMinor: card.balance_minor + request.amountMinor };
}
