import { runTogether, type Db, type Statement } from '../knex.js';
import type { MemberCardRow } from './member-cards.js';

/** Why a balance moved (balance_ledger.reason; the registry's BALANCE_REASONS). */
export type BalanceReason = 'payment' | 'refund' | 'recharge' | 'adjustment' | 'recharge_reversal' | 'card_replacement' | 'payout' | 'transfer_debit' | 'transfer_credit' | 'transfer_return';
/** Why points moved (point_ledger.reason; the registry's POINT_REASONS). */
export type PointReason = 'earn' | 'clawback' | 'adjustment' | 'card_replacement';

export interface CardChange {
  transactionId?: string;
  balance?: { delta: number; reason: BalanceReason };
  points?: { delta: number; reason: PointReason; note?: string; actorKeyId?: string };
  /** Points moved without a transaction (card_replacement, like an admin's adjustment): the point row names none. */
  pointsWithoutTransaction?: boolean;
}

/**
 * The only way a card's balance or points change: the card row and one ledger row per moved
 * quantity, as statements to run together (runTogether), so balance = Σ balance_ledger and
 * points = Σ point_ledger always hold. The level and `status` are written as the caller decided
 * them (domain/decide-*.ts); an absent level leaves the card's as it is. The caller holds the card's row lock; the CHECK
 * constraints refuse a negative result even if its arithmetic is wrong.
 */
export function cardChange(trx: Db, card: MemberCardRow, change: CardChange & { status?: string; level?: number; replacedBy?: string }): { statements: Statement[]; after: CardAfter } {
  const balanceDelta = change.balance?.delta ?? 0;
  const pointsDelta = change.points?.delta ?? 0;
  const balance = card.balance_minor + balanceDelta;
  const points = card.points + pointsDelta;
  const level = change.level ?? card.level;
  const after = { balance, points, level };
  if (!balanceDelta && !pointsDelta && !change.status && level === card.level) return { statements: [], after };
  const statements = [
    trx('member_cards')
      .where({ id: card.id })
      .update({ balance_minor: balance, points, level, ...(change.status ? { status: change.status } : {}), ...(change.replacedBy ? { replaced_by: change.replacedBy } : {}), updated_at: trx.fn.now() })
      .toSQL(),
    ...ledgerRows(trx, card.id, change, { balance, points }),
  ];
  return { statements, after };
}

/**
 * The ledger rows of a card inserted with a balance and points (a replacement card, which starts
 * with what the old one held): so that balance = Σ balance_ledger and points = Σ point_ledger
 * hold for it from its first row. The card's INSERT goes with them, holding the same values.
 */
export function openingLedger(trx: Db, cardId: string, change: CardChange & { balance: { delta: number }; points: { delta: number } }): Statement[] {
  return ledgerRows(trx, cardId, change, { balance: change.balance.delta, points: change.points.delta });
}

function ledgerRows(trx: Db, cardId: string, change: CardChange, after: { balance: number; points: number }): Statement[] {
  const statements: Statement[] = [];
  const tx = change.transactionId ?? null;
  if (change.balance?.delta) {
    statements.push(trx('balance_ledger').insert({ card_id: cardId, transaction_id: tx, delta_minor: change.balance.delta, balance_after_minor: after.balance, reason: change.balance.reason }).toSQL());
  }
  if (change.points?.delta) {
    const { delta, reason, note, actorKeyId } = change.points;
    const pointsTx = change.pointsWithoutTransaction ? null : tx;
    statements.push(trx('point_ledger').insert({ card_id: cardId, transaction_id: pointsTx, delta, points_after: after.points, reason, note: note ?? null, actor_key_id: actorKeyId ?? null }).toSQL());
  }
  return statements;
}

interface CardAfter {
  balance: number;
  points: number;
  level: number;
}

/** Applies cardChange now, in one round trip, and returns the card's state after it. */
export async function changeCard(trx: Db, card: MemberCardRow, change: CardChange & { level?: number }): Promise<CardAfter> {
  const { statements, after } = cardChange(trx, card, change);
  if (statements.length) await runTogether(trx, statements[0]!, statements.slice(1));
  Object.assign(card, { balance_minor: after.balance, points: after.points, level: after.level });
  return after;
}

/** A balance-only change (recharges, voucher face value); returns the balance after it. */
export async function changeBalance(trx: Db, card: MemberCardRow, change: { delta: number; transactionId: string; reason: BalanceReason }): Promise<number> {
  return (await changeCard(trx, card, { transactionId: change.transactionId, balance: change })).balance;
}

/** A points-only change (admin adjustments) with the level it leaves the card at; returns the points and level after it. */
export async function changePoints(
  trx: Db,
  card: MemberCardRow,
  change: { delta: number; level: number; reason: PointReason; transactionId?: string; note?: string; actorKeyId?: string },
): Promise<{ points: number; level: number }> {
  return changeCard(trx, card, { transactionId: change.transactionId, points: change, level: change.level });
}
