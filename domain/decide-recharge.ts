import { refusal, type Refusal } from './decision.js';
import { isRechargeable, type CardType } from './discount.js';
import type { ErrorCode } from './errors.js';
import { ACT_REFUSALS, mayAct } from './may-act.js';
import { formatMinor } from './money.js';

/** Every code decideRecharge refuses with. */
export const RECHARGE_REFUSALS = ['RECHARGE_NOT_ALLOWED', ...ACT_REFUSALS, 'BALANCE_LIMIT_EXCEEDED'] as const satisfies readonly ErrorCode[];

export interface RechargeState {
  card: { type: CardType; status: string; is_expired: boolean; balance_minor: number } | undefined;
  ownerStatus: string | null;
  /** The member who recharges, when one is named (undefined when none is). */
  actorStatus?: string | null;
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

/** A recharge (DESIGN.md §2), decided without I/O: prepaid and corporate only, resulting balance within MAX_BALANCE, no points. */
export function decideRecharge(state: RechargeState, request: { amountMinor: number }, rules: { maxBalanceMinor: number }): Refusal | RechargePlan {
  const notAllowed = rechargeNotAllowed(state.card);
  if (notAllowed || !state.card) return notAllowed!;
  const { card } = state;
  const refused = mayAct(card, { ownerStatus: state.ownerStatus, actorStatus: state.actorStatus }, undefined, 'recharge');
  if (refused) return refused;
  if (card.balance_minor + request.amountMinor > rules.maxBalanceMinor) {
    return refusal('BALANCE_LIMIT_EXCEEDED', `A card may hold at most ${formatMinor(rules.maxBalanceMinor)}`, { balance: formatMinor(card.balance_minor) });
  }
  return { amountMinor: request.amountMinor, balanceDeltaMinor: request.amountMinor, balanceAfterMinor: card.balance_minor + request.amountMinor };
}
