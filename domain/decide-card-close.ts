import { refusal, type Refusal } from './decision.js';
import type { ErrorCode } from './errors.js';

/** Every code decideCardClose refuses with. */
export const CARD_CLOSE_REFUSALS = ['CARD_NOT_ACTIVE', 'TRANSFER_IN_PROGRESS', 'PAYMENT_REFERENCE_USED'] as const satisfies readonly ErrorCode[];

export interface CardCloseState {
  card: { status: string; balance_minor: number } | undefined;
  /** Whether an operation that took money off the card is still open elsewhere (a transfer whose credit has not ended). */
  moneyInFlight: boolean;
  /** Whether a payout was already made with this method and reference. */
  referenceUsed: boolean;
}

export interface CardClosePlan {
  /** The whole balance leaves as the payout (0: the card closes with nothing to pay). */
  payoutMinor: number;
  balanceDeltaMinor: number;
}

/**
 * An admin's card close (DESIGN.md "Operator tools"), decided without I/O: any card not yet closed
 * (frozen and expired ones too: paying out what is left is why they are closed) pays out its whole
 * balance and closes. Not while money taken off it is on its way back, and one payout reference
 * pays one payout.
 */
export function decideCardClose(state: CardCloseState): Refusal | CardClosePlan {
  const { card } = state;
  if (!card || card.status === 'closed') return refusal('CARD_NOT_ACTIVE', 'The card is already closed');
  if (state.moneyInFlight) return refusal('TRANSFER_IN_PROGRESS', 'A transfer from this card has not ended yet; try again in a moment');
  if (state.referenceUsed && card.balance_minor > 0) return refusal('PAYMENT_REFERENCE_USED', 'This payout_reference has already paid out a card');
  return { payoutMinor: card.balance_minor, balanceDeltaMinor: -card.balance_minor };
}
