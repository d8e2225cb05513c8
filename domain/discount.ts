import { mulDivRoundHalfUp } from './money.js';

export type CardType = 'standard' | 'prepaid' | 'corporate' | 'voucher';

/** final = round half up (raw × rate) to the cent; rate in thousandths. */
export function applyDiscount(rawMinor: number, rateMilli: number): number {
  return mulDivRoundHalfUp(rawMinor, rateMilli, 1000);
}

/** Points are one per whole currency unit of the raw amount, for the card types that earn. */
export function pointsEarned(rawMinor: number, type: CardType): number {
  return type === 'standard' || type === 'prepaid' ? Math.floor(rawMinor / 100) : 0;
}

/** Which discount rate applies: corporate cards carry their own, vouchers none, the rest follow the level. */
export function discountRateFor(type: CardType, levelRateMilli: number, fixedDiscountMilli: number | null): number {
  if (type === 'corporate') return fixedDiscountMilli ?? 1000;
  if (type === 'voucher') return 1000;
  return levelRateMilli;
}

/** Whether the card pays from its stored balance (vs. an external method given by the POS). */
export const paysFromBalance = (type: CardType) => type !== 'standard';
export const isShareable = (type: CardType) => type === 'prepaid' || type === 'corporate';
export const isRechargeable = (type: CardType) => type === 'prepaid' || type === 'corporate';
