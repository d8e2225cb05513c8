import { refusal, type Refusal } from './decision.js';
import { paysFromBalance, type CardType } from './discount.js';
import type { ErrorCode } from './errors.js';
import { formatMinor } from './money.js';

/** Every code decideAdjustment refuses with. */
export const ADJUSTMENT_REFUSALS = ['RECHARGE_NOT_ALLOWED', 'CARD_NOT_ACTIVE', 'INSUFFICIENT_BALANCE', 'BALANCE_LIMIT_EXCEEDED'] as const satisfies readonly ErrorCode[];

export interface AdjustmentState {
  card: { type: CardType; status: string; balance_minor: number } | undefined;
}

export interface AdjustmentPlan {
  /** Signed: what the balance moves by. */
  deltaMinor: number;
  balanceAfterMinor: number;
}

/**
 * Whether an adjustment waits for a second admin (four eyes): its size, either way, above
 * ADJUSTMENT_APPROVAL_OVER. Exactly the threshold goes through.
 */
export const adjustmentNeedsApproval = (amountMinor: number, approvalOverMinor: number): boolean => Math.abs(amountMinor) > approvalOverMinor;

/**
 * An operator's balance correction (API.md "Operator money tools"), decided without I/O: only
 * cards that hold a balance (not standard cards); any status but closed, because a correction must
 * be possible on a frozen or expired card that cannot pay; never below 0 (INSUFFICIENT_BALANCE),
 * never above MAX_BALANCE (BALANCE_LIMIT_EXCEEDED).
 */
export function decideAdjustment(state: AdjustmentState, request: { amountMinor: number }, rules: { maxBalanceMinor: number }): Refusal | AdjustmentPlan {
  const { card } = state;
  if (!card || !paysFromBalance(card.type)) return refusal('RECHARGE_NOT_ALLOWED', 'A standard card holds no balance to adjust');
  if (card.status === 'closed') return refusal('CARD_NOT_ACTIVE', 'The card is closed');
  const after = card.balance_minor + request.amountMinor;
  if (after < 0) {
    return refusal('INSUFFICIENT_BALANCE', 'The adjustment would take the balance below 0', { balance: formatMinor(card.balance_minor), amount: formatMinor(request.amountMinor) });
  }
  if (request.amountMinor > 0 && after > rules.maxBalanceMinor) {
    return refusal('BALANCE_LIMIT_EXCEEDED', `A card may hold at most ${formatMinor(rules.maxBalanceMinor)}`, { balance: formatMinor(card.balance_minor) });
  }
  return { deltaMinor: request.amountMinor, balanceAfterMinor: after };
}
