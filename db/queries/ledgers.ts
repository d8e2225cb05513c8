import type { Db } from '../knex.js';
import { levelFor, type Level } from '../../domain/levels.js';
import type { MemberCardRow } from './member-cards.js';

/**
 * Moves a locked card's balance and writes its ledger row: the only way a balance changes, so
 * balance = Σ balance_ledger always holds. The CHECK constraints refuse a negative result even
 * if a caller got its arithmetic wrong.
 */
export async function changeBalance(
  trx: Db,
  card: MemberCardRow,
  change: { delta: number; transactionId: string; reason: 'payment' | 'refund' | 'recharge' },
): Promise<number> {
  const after = card.balance_minor + change.delta;
  await trx('member_cards').where({ id: card.id }).update({ balance_minor: after, updated_at: trx.fn.now() });
  await trx('balance_ledger').insert({
    card_id: card.id,
    transaction_id: change.transactionId,
    delta_minor: change.delta,
    balance_after_minor: after,
    reason: change.reason,
  });
  card.balance_minor = after;
  return after;
}

/**
 * Moves a locked card's points, writes the ledger row and recomputes the level in the same
 * transaction. Returns the points and level after the change.
 */
export async function changePoints(
  trx: Db,
  card: MemberCardRow,
  levels: readonly Level[],
  change: { delta: number; reason: 'earn' | 'clawback' | 'adjustment'; transactionId?: string; note?: string; actorKeyId?: string },
): Promise<{ points: number; level: number }> {
  const points = card.points + change.delta;
  const level = levelFor(points, levels).level;
  if (change.delta === 0) return { points, level: card.level };
  await trx('member_cards').where({ id: card.id }).update({ points, level, updated_at: trx.fn.now() });
  await trx('point_ledger').insert({
    card_id: card.id,
    transaction_id: change.transactionId ?? null,
    delta: change.delta,
    points_after: points,
    reason: change.reason,
    note: change.note ?? null,
    actor_key_id: change.actorKeyId ?? null,
  });
  card.points = points;
  card.level = level;
  return { points, level };
}
