import { cardRateMilli } from './card-rate.js';
import { effectiveLimits, limitRefusal, NO_LIMITS, type CardLimits, type Today } from './card-limits.js';
import { refusal, type Refusal } from './decision.js';
import { applyDiscount, paysFromBalance, pointsEarned, type CardType } from './discount.js';
import { levelAfterPoints, type Level } from './levels.js';
import type { ErrorCode } from './errors.js';
import { ACT_REFUSALS, mayAct, presentedQrRefusal, type PresentedQr } from './may-act.js';
import { formatMinor } from './money.js';

/** What a charge is decided on: the locked card, the presented QR, and who is involved. */
export interface ChargeState {
  /** The card, or undefined when there is none for the operation. */
  card:
    | {
        id: string;
        type: CardType;
        status: string;
        is_expired: boolean;
        balance_minor: number;
        points: number;
        level: number;
        fixed_discount: string | null;
      }
    | undefined;
  /** The presented token's row when it is live (nulls when it is not). */
  qr: PresentedQr;
  payerRole: string | null;
  merchantStatus: string | null;
  ownerStatus: string | null;
  payerStatus: string | null;
  /** The card's own limits (null: the platform's) and its payments so far today; none when absent. */
  limits?: { card: CardLimits; today: Today };
}

export interface ChargeRequest {
  amountMinor: number;
  paymentMethod: string | null;
  /** When the operation was accepted: the QR counts as presented then. */
  presentedAt: Date;
}

export interface ChargeRules {
  levels: readonly Level[];
  /** The platform's limits (CARD_* settings; null: none), under the card's own. */
  limitDefaults?: CardLimits;
}

export interface ChargePlan {
  rawMinor: number;
  /** The rate applied, in thousandths. */
  discountMilli: number;
  finalMinor: number;
  viaBalance: boolean;
  /** What the card's balance moves by: −final when it pays from balance, 0 for standard cards. */
  balanceDeltaMinor: number;
  balanceAfterMinor: number;
  pointsEarned: number;
  pointsAfter: number;
  /** The card's level after the points (unchanged when none are earned). */
  levelAfter: number;
  /** A voucher is used up by its one payment. */
  voucherUsed: boolean;
  /** The payment method the transaction records. */
  paymentMethod: string | null;
}

/** Every code decideCharge refuses with. */
export const CHARGE_REFUSALS = [...ACT_REFUSALS, 'PAYMENT_METHOD_REQUIRED', 'LIMIT_EXCEEDED', 'INSUFFICIENT_BALANCE'] as const satisfies readonly ErrorCode[];

/** A charge that was refused for the QR itself (counted as an invalid QR). */
export type ChargeRefusal = Refusal & { qrInvalid?: boolean };

/**
 * A charge (DESIGN.md §2), decided without I/O: QR, then who may pay, then the card, then the
 * money. The discount follows the level before the payment; final = round half up (raw × rate);
 * points = floor(raw) in whole units for standard and prepaid cards; the level is recomputed after.
 * A payment from the card's balance must stay within the card's limits (LIMIT_EXCEEDED, before
 * INSUFFICIENT_BALANCE); a standard card pays with outside money and has none.
 */
export function decideCharge(state: ChargeState, request: ChargeRequest, rules: ChargeRules): ChargeRefusal | ChargePlan {
  const { card, qr } = state;
  // A closed card's tokens ended with it: a charge accepted before the close says why it cannot pay.
  if (card?.status === 'closed') return refusal('CARD_NOT_ACTIVE', 'The card is closed');
  const invalidQr = presentedQrRefusal(card, qr, request.presentedAt);
  if (invalidQr || !card) return { ...invalidQr!, qrInvalid: true };
  const refused = mayAct(card, { merchantStatus: state.merchantStatus, ownerStatus: state.ownerStatus, actorStatus: state.payerStatus }, { role: state.payerRole }, 'pay');
  if (refused) return refused;
  if (card.type === 'standard' && !request.paymentMethod) return refusal('PAYMENT_METHOD_REQUIRED', 'A standard card pays with an external method: give payment_method');

  const rate = cardRateMilli(card, rules.levels);
  const finalMinor = applyDiscount(request.amountMinor, rate);
  const viaBalance = paysFromBalance(card.type);
  if (viaBalance) {
    const { limits } = effectiveLimits(state.limits?.card ?? NO_LIMITS, rules.limitDefaults ?? NO_LIMITS);
    const overLimit = limitRefusal(limits, state.limits?.today ?? { spentMinor: 0, payments: 0 }, finalMinor);
    if (overLimit) return overLimit;
  }
  if (viaBalance && card.balance_minor < finalMinor) {
    return refusal('INSUFFICIENT_BALANCE', 'The card balance is not enough for this payment', { balance: formatMinor(card.balance_minor), needed: formatMinor(finalMinor) });
  }
  const earned = pointsEarned(request.amountMinor, card.type);
  const balanceDeltaMinor = viaBalance ? -finalMinor : 0;
  const pointsAfter = card.points + earned;
  return {
    rawMinor: request.amountMinor,
    discountMilli: rate,
    finalMinor,
    viaBalance,
    balanceDeltaMinor,
    balanceAfterMinor: card.balance_minor + balanceDeltaMinor,
    pointsEarned: earned,
    pointsAfter,
    levelAfter: levelAfterPoints(card.level, pointsAfter, earned, rules.levels),
    voucherUsed: card.type === 'voucher',
    paymentMethod: viaBalance ? 'balance' : request.paymentMethod,
  };
}
