import { discountRateFor, type CardType } from './discount.js';
import { levelFor, type Level } from './levels.js';
import { parseRate } from './money.js';

/**
 * The discount a card would get on its next payment, in thousandths: the rule the charge job
 * applies (level from the card's points, fixed rate for corporate, none for vouchers), so that
 * what a card shows is what it pays.
 */
export function cardRateMilli(card: { type: CardType; points: number; fixed_discount: string | null }, levels: readonly Level[]): number {
  const levelRate = levelFor(card.points, levels).discountMilli;
  return discountRateFor(card.type, levelRate, card.fixed_discount === null ? null : parseRate(card.fixed_discount));
}
