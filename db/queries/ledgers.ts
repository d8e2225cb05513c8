import type { Db } from '../knex.js';
import { levelFor, type Level } from '../../domain/levels.js';
import type { MemberCardRow } from './member-cards.js';

export interface CardChange {
  transactionId?: string;
  balance?: { delta: number; reason: 'payment' | 'refund' | 'recharge' };
  points?: { delta: number; reason: 'earn' | 'clawback' | 'adjustment'; note?: string; actorKeyId?: string };
}

/**
 * The only way a card's balance or points change: the card row and one ledger row per moved
 * quantity, in one statement, so balance = Σ balance_ledger and points = Σ point_ledger always
 * hold. The level is recomputed from the new points in the same statement. The caller holds the
 * card's row lock; the CHECK constraints refuse a negative result even if its arithmetic is wrong.
 */
export async function changeCard(trx: Db, card: MemberCardRow, levels: readonly Level[] | null, change: CardChange): Promise<{ balance: number; points: number; level: number }> {
  const balanceDelta = change.balance?.delta ?? 0;
  const pointsDelta = change.points?.delta ?? 0;
  const balance = card.balance_minor + balanceDelta;
  const points = card.points + pointsDelta;
  const level = pointsDelta && levels ? levelFor(points, levels).level : card.level;
  if (!balanceDelta && !pointsDelta) return { balance, points, level };
  await trx.raw(
    `WITH card AS (
       UPDATE member_cards SET balance_minor = :balance, points = :points, level = :level, updated_at = now() WHERE id = :card RETURNING id
     ), balance_row AS (
       INSERT INTO balance_ledger (card_id, transaction_id, delta_minor, balance_after_minor, reason)
       SELECT id, :tx, :balanceDelta, :balance, :balanceReason FROM card WHERE :balanceDelta::bigint <> 0
     )
     INSERT INTO point_ledger (card_id, transaction_id, delta, points_after, reason, note, actor_key_id)
     SELECT id, :tx, :pointsDelta, :points, :pointsReason, :note, :actor FROM card WHERE :pointsDelta::bigint <> 0`,
    {
      card: card.id,
      balance,
      points,
      level,
      tx: change.transactionId ?? null,
      balanceDelta,
      balanceReason: change.balance?.reason ?? 'payment',
      pointsDelta,
      pointsReason: change.points?.reason ?? 'earn',
      note: change.points?.note ?? null,
      actor: change.points?.actorKeyId ?? null,
    },
  );
  Object.assign(card, { balance_minor: balance, points, level });
  return { balance, points, level };
}

/** A balance-only change (recharges, voucher face value); returns the balance after it. */
export async function changeBalance(trx: Db, card: MemberCardRow, change: { delta: number; transactionId: string; reason: 'payment' | 'refund' | 'recharge' }): Promise<number> {
  return (await changeCard(trx, card, null, { transactionId: change.transactionId, balance: change })).balance;
}

/** A points-only change (admin adjustments); returns the points and level after it. */
export async function changePoints(
  trx: Db,
  card: MemberCardRow,
  levels: readonly Level[],
  change: { delta: number; reason: 'earn' | 'clawback' | 'adjustment'; transactionId?: string; note?: string; actorKeyId?: string },
): Promise<{ points: number; level: number }> {
  return changeCard(trx, card, levels, { transactionId: change.transactionId, points: change });
}
