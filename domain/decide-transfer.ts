import { refusal, type Refusal } from './decision.js';
import { isRechargeable, type CardType } from './discount.js';
import type { ErrorCode } from './errors.js';
import { mayAct } from './may-act.js';
import { formatMinor } from './money.js';

/**
 * A transfer between two cards runs in legs, each on its own card's partition (operations/transfer.ts):
 * the debit of the source, the credit of the destination, and the end on the source, which hands
 * the money back if the credit was refused. Each leg decides here, without I/O.
 */

/** Every code the debit of the source refuses with. */
export const TRANSFER_DEBIT_REFUSALS = ['RECHARGE_NOT_ALLOWED', 'MEMBER_SUSPENDED', 'CARD_NOT_ACTIVE', 'CARD_EXPIRED', 'INSUFFICIENT_BALANCE'] as const satisfies readonly ErrorCode[];
/** Every code the credit of the destination refuses with: the transfer then ends failed with it, its money back on the source. */
export const TRANSFER_CREDIT_REFUSALS = ['RECHARGE_NOT_ALLOWED', 'MEMBER_SUSPENDED', 'CARD_NOT_ACTIVE', 'CARD_EXPIRED', 'BALANCE_LIMIT_EXCEEDED'] as const satisfies readonly ErrorCode[];

export interface TransferCardState {
  card: { type: CardType; status: string; is_expired: boolean; balance_minor: number } | undefined;
  ownerStatus: string | null;
}

export interface BalanceMove {
  balanceDeltaMinor: number;
  balanceAfterMinor: number;
}

/** Only stored-value cards that take recharges take part (a voucher is spent at a merchant, a standard card holds no value). */
export function transferNotAllowed(card: { type: CardType } | undefined): Refusal | null {
  return !card || !isRechargeable(card.type) ? refusal('RECHARGE_NOT_ALLOWED', 'Only prepaid and corporate cards take part in transfers') : null;
}

/** The source gives the amount if it may pay and holds it. */
export function decideTransferDebit(state: TransferCardState, request: { amountMinor: number }): Refusal | BalanceMove {
  const notAllowed = transferNotAllowed(state.card);
  if (notAllowed || !state.card) return notAllowed!;
  const { card } = state;
  const refused = mayAct(card, { ownerStatus: state.ownerStatus }, undefined, 'pay');
  if (refused) return refused;
  if (card.balance_minor < request.amountMinor) return refusal('INSUFFICIENT_BALANCE', 'The source card does not hold the amount', { balance: formatMinor(card.balance_minor) });
  return { balanceDeltaMinor: -request.amountMinor, balanceAfterMinor: card.balance_minor - request.amountMinor };
}

/** The destination takes the amount if it is open to it (active, unexpired, owner active) and stays within MAX_BALANCE, as a recharge would. */
export function decideTransferCredit(state: TransferCardState, request: { amountMinor: number }, rules: { maxBalanceMinor: number }): Refusal | BalanceMove {
  const notAllowed = transferNotAllowed(state.card);
  if (notAllowed || !state.card) return notAllowed!;
  const { card } = state;
  const refused = mayAct(card, { ownerStatus: state.ownerStatus }, undefined, 'recharge');
  if (refused) return refused;
  if (card.balance_minor + request.amountMinor > rules.maxBalanceMinor) {
    return refusal('BALANCE_LIMIT_EXCEEDED', `A card may hold at most ${formatMinor(rules.maxBalanceMinor)}`, { balance: formatMinor(card.balance_minor) });
  }
  return { balanceDeltaMinor: request.amountMinor, balanceAfterMinor: card.balance_minor + request.amountMinor };
}

/** How the credit leg ended, as the end leg learns it. */
export type CreditOutcome = { credited: true } | { credited: false; code: ErrorCode; message: string };

export interface TransferEnd {
  /** What goes back onto the source: the whole amount when the credit was refused, else 0. */
  returnMinor: number;
  outcome: { status: 'succeeded' } | { status: 'failed'; code: ErrorCode; message: string };
}

/**
 * The end of a transfer, on the source: a credit that landed ends it succeeded; a refused one
 * hands the whole amount back to the source, whatever the source's state now (it is the
 * source's own money coming home; closing or replacing a card waits until no transfer from it
 * is open), and ends the transfer failed with the credit's code.
 */
export function decideTransferEnd(credit: CreditOutcome, amountMinor: number): TransferEnd {
  if (credit.credited) return { returnMinor: 0, outcome: { status: 'succeeded' } };
  return { returnMinor: amountMinor, outcome: { status: 'failed', code: credit.code, message: credit.message } };
}
