import { refusal, type Refusal } from './decision.js';
import type { ErrorCode } from './errors.js';
import { formatMinor } from './money.js';
import { paymentStatusAfterRefund, type PaymentStatus } from './refund-math.js';

/** Every code decideRechargeReversal refuses with. */
export const RECHARGE_REVERSAL_REFUSALS = ['ORIGINAL_TX_NOT_FOUND', 'CARD_NOT_ACTIVE', 'REFUND_EXCEEDS_AVAILABLE', 'INSUFFICIENT_BALANCE'] as const satisfies readonly ErrorCode[];

export interface RechargeReversalState {
  card: { id: string; status: string; balance_minor: number } | undefined;
  /** The recharge the reversal points at (locked), or undefined when there is no recharge with that number. */
  recharge: { card_id: string; final_amount_minor: number; refunded_amount_minor: number } | undefined;
}

export interface RechargeReversalPlan {
  amountMinor: number;
  /** What the balance moves by: −amount. */
  balanceDeltaMinor: number;
  balanceAfterMinor: number;
  /** Reversed so far on the recharge, this one included (its refunded_amount_minor). */
  reversedTotalMinor: number;
  /** The recharge's status after it: partially_refunded, or refunded once reversed in full. */
  rechargeStatusAfter: PaymentStatus;
}

/**
 * Takes back (part of) a recharge whose money was charged back by the provider, decided without
 * I/O: the recharge must be one of this card's; what is reversed, all reversals together, stays
 * within what was recharged (REFUND_EXCEEDS_AVAILABLE); the card must still hold it
 * (INSUFFICIENT_BALANCE: it has been spent). A closed card has no balance left to take.
 */
export function decideRechargeReversal(state: RechargeReversalState, request: { amountMinor: number }): Refusal | RechargeReversalPlan {
  const { card, recharge } = state;
  if (!card || !recharge || recharge.card_id !== card.id) return refusal('ORIGINAL_TX_NOT_FOUND', 'No recharge of this card has that number');
  if (card.status === 'closed') return refusal('CARD_NOT_ACTIVE', 'The card is closed');
  const available = recharge.final_amount_minor - recharge.refunded_amount_minor;
  if (request.amountMinor > available) return refusal('REFUND_EXCEEDS_AVAILABLE', 'The reversal is more than what is left of the recharge', { available: formatMinor(available) });
  if (request.amountMinor > card.balance_minor) {
    return refusal('INSUFFICIENT_BALANCE', 'The card no longer holds that much: it has been spent', { balance: formatMinor(card.balance_minor), needed: formatMinor(request.amountMinor) });
  }
  const reversedTotalMinor = recharge.refunded_amount_minor + request.amountMinor;
  return {
    amountMinor: request.amountMinor,
    balanceDeltaMinor: -request.amountMinor,
    balanceAfterMinor: card.balance_minor - request.amountMinor,
    reversedTotalMinor,
    rechargeStatusAfter: paymentStatusAfterRefund(recharge.final_amount_minor, reversedTotalMinor),
  };
}
