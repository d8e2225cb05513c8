import { refusal, type Refusal } from './decision.js';
import type { ErrorCode } from './errors.js';

/** Every code decideRefund refuses with. */
export const REFUND_REFUSALS = ['ORIGINAL_TX_NOT_FOUND', 'CARD_NOT_ACTIVE', 'REFUND_WINDOW_EXPIRED', 'REFUND_EXCEEDS_AVAILABLE'] as const satisfies readonly ErrorCode[];
import type { CardType } from './discount.js';
import { levelAfterPoints, type Level } from './levels.js';
import { formatMinor } from './money.js';
import { paymentStatusAfterRefund, pointsClawback, type PaymentStatus } from './refund-math.js';

export interface RefundState {
  card: { id: string; type: CardType; status: string; points: number; level: number } | undefined;
  /** The merchant's payment the refund points at, or undefined when there is none. */
  payment:
    | {
        card_id: string;
        final_amount_minor: number;
        refunded_amount_minor: number;
        points_earned: number;
        via_balance: boolean;
        /** Whether the refund window has passed (judged by the database clock). */
        window_passed: boolean;
      }
    | undefined;
}

export interface RefundRules {
  refundWindowDays: number;
  levels: readonly Level[];
}

export interface RefundPlan {
  refundMinor: number;
  /** What the card's balance moves by: +refund when the payment debited it, else 0. */
  balanceDeltaMinor: number;
  pointsClawed: number;
  pointsAfter: number;
  levelAfter: number;
  refundedTotalMinor: number;
  paymentStatusAfter: PaymentStatus;
  /** A voucher whose only use is refunded in full can be used again (its value is back on it). */
  voucherReusable: boolean;
}

/**
 * A refund (DESIGN.md §2), decided without I/O: cumulative refunds capped at the payment's final
 * amount, inside the window; balance credited only if the payment debited it; points clawed back
 * so that the total is floor(points_earned × refunded_total / final), never below 0 on the card.
 */
export function decideRefund(state: RefundState, request: { amountMinor: number }, rules: RefundRules): Refusal | RefundPlan {
  const { card, payment } = state;
  if (!card || !payment || payment.card_id !== card.id) return refusal('ORIGINAL_TX_NOT_FOUND', 'No payment of this merchant has that number');
  // Closed cards take nothing, refunds included (its balance was paid out or moved to its replacement): the merchant refunds another way.
  if (card.status === 'closed') return refusal('CARD_NOT_ACTIVE', 'The card is closed');
  if (payment.window_passed) return refusal('REFUND_WINDOW_EXPIRED', `Payments can be refunded for ${rules.refundWindowDays} days`);
  const available = payment.final_amount_minor - payment.refunded_amount_minor;
  if (request.amountMinor > available) return refusal('REFUND_EXCEEDS_AVAILABLE', 'The refund is more than what is left of the payment', { available: formatMinor(available) });

  const clawed = pointsClawback({
    pointsEarned: payment.points_earned,
    finalMinor: payment.final_amount_minor,
    refundedBeforeMinor: payment.refunded_amount_minor,
    refundMinor: request.amountMinor,
    cardPoints: card.points,
  });
  const refundedTotalMinor = payment.refunded_amount_minor + request.amountMinor;
  const paymentStatusAfter = paymentStatusAfterRefund(payment.final_amount_minor, refundedTotalMinor);
  const pointsAfter = card.points - clawed;
  return {
    refundMinor: request.amountMinor,
    balanceDeltaMinor: payment.via_balance ? request.amountMinor : 0,
    pointsClawed: clawed,
    pointsAfter,
    levelAfter: levelAfterPoints(card.level, pointsAfter, -clawed, rules.levels),
    refundedTotalMinor,
    paymentStatusAfter,
    voucherReusable: card.type === 'voucher' && card.status === 'used' && paymentStatusAfter === 'refunded',
  };
}
