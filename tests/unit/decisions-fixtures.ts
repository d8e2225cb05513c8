import type { ChargeState } from '../../domain/decide-charge.js';
import type { Level } from '../../domain/levels.js';

/** The seeded membership_levels table (DESIGN "Levels, discount, points"). */
export const LEVELS: readonly Level[] = [
  { level: 0, name: 'regular', minPoints: 0, discountMilli: 1000 },
  { level: 1, name: 'silver', minPoints: 1000, discountMilli: 950 },
  { level: 2, name: 'gold', minPoints: 5000, discountMilli: 900 },
  { level: 3, name: 'diamond', minPoints: 10_000, discountMilli: 850 },
];

export const PRESENTED = new Date('2026-12-01T10:00:00Z');
export const LIVE_UNTIL = new Date('2026-12-01T10:05:00Z');

/** A chargeable prepaid card with a live QR of an active owner: override what a test is about. */
export function chargeState(card: Partial<NonNullable<ChargeState['card']>> = {}, rest: Partial<Omit<ChargeState, 'card'>> = {}): ChargeState {
  return {
    card: { id: 'card-1', type: 'prepaid', status: 'active', is_expired: false, balance_minor: 100_000, points: 0, level: 0, fixed_discount: null, ...card },
    qr: { cardId: 'card-1', expiresAt: LIVE_UNTIL },
    payerRole: 'owner',
    merchantStatus: 'active',
    ownerStatus: 'active',
    payerStatus: 'active',
    ...rest,
  };
}
