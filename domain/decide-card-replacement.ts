import { refusal, type Refusal } from './decision.js';
import type { CardType } from './discount.js';
import type { ErrorCode } from './errors.js';
import { mayAct } from './may-act.js';

/** Every code decideCardReplacement refuses with. */
export const CARD_REPLACEMENT_REFUSALS = ['MEMBER_SUSPENDED', 'VOUCHER_ALREADY_USED', 'CARD_NOT_ACTIVE', 'CARD_EXPIRED', 'TRANSFER_IN_PROGRESS'] as const satisfies readonly ErrorCode[];

export interface ReplacementState {
  card: { type: CardType; status: string; is_expired: boolean; balance_minor: number; points: number; level: number } | undefined;
  ownerStatus: string | null;
  /** Whether an operation that took money off the card is still open elsewhere (a transfer whose credit has not ended). */
  moneyInFlight: boolean;
}

export interface ReplacementPlan {
  /** What the new card starts with: all of the old card's balance, points and level. */
  balanceMinor: number;
  points: number;
  level: number;
  /** A frozen card's replacement is frozen too: a replacement never lifts an admin's freeze. */
  newStatus: 'active' | 'frozen';
}

/**
 * A card replacement (lost, damaged), decided without I/O: an active or frozen, unexpired card of
 * an active owner gives everything it holds to a new card and closes. Not while money taken off
 * it is still on its way (it could have to come back to a closed card).
 */
export function decideCardReplacement(state: ReplacementState): Refusal | ReplacementPlan {
  const { card } = state;
  if (!card) return refusal('CARD_NOT_ACTIVE', 'There is no such card');
  const frozen = card.status === 'frozen';
  const refused = mayAct({ ...card, status: frozen ? 'active' : card.status }, { ownerStatus: state.ownerStatus }, undefined, 'pay');
  if (refused) return refused;
  if (state.moneyInFlight) return refusal('TRANSFER_IN_PROGRESS', 'A transfer from this card has not ended yet; try again in a moment');
  return { balanceMinor: card.balance_minor, points: card.points, level: card.level, newStatus: frozen ? 'frozen' : 'active' };
}
