import { refusal, type Refusal } from './decision.js';
import { formatMinor } from './money.js';

/** The limits a card can carry (API.md "Operator money tools", PUT /v1/cards/:id/limits). */
export const LIMIT_NAMES = ['single_payment_limit', 'daily_spend_limit', 'daily_payment_count'] as const;
export type LimitName = (typeof LIMIT_NAMES)[number];

/**
 * One value per limit: minor units for the two amounts, a number of payments for the count;
 * null means none. On a card, null means "the platform default"; in the platform defaults, "no limit".
 */
export type CardLimits = Record<LimitName, number | null>;

export const NO_LIMITS: CardLimits = { single_payment_limit: null, daily_spend_limit: null, daily_payment_count: null };

/** What the card's payments so far today (SETTLEMENT_TZ) add up to. */
export interface Today {
  spentMinor: number;
  payments: number;
}

/** The limits in force: the card's own where it has one, else the platform's; and where each comes from. */
export function effectiveLimits(own: CardLimits, defaults: CardLimits): { limits: CardLimits; source: Record<LimitName, 'card' | 'platform'> } {
  const limits = { ...NO_LIMITS };
  const source = {} as Record<LimitName, 'card' | 'platform'>;
  for (const name of LIMIT_NAMES) {
    limits[name] = own[name] ?? defaults[name];
    source[name] = own[name] === null ? 'platform' : 'card';
  }
  return { limits, source };
}

/** Whether a payment must know the day's spend and count: only when a daily limit is in force. */
export const countsToday = (limits: CardLimits): boolean => limits.daily_spend_limit !== null || limits.daily_payment_count !== null;

/**
 * The limit a payment of `finalMinor` from the card's balance would break, checked in the order
 * single payment, daily spend, daily count; null when it breaks none. A limit is a ceiling the
 * payment may reach: exactly the limit passes. Today's figures count the payments made, refunds
 * or not (a refund gives back money, not the day's allowance).
 */
export function limitRefusal(limits: CardLimits, today: Today, finalMinor: number): Refusal | null {
  const single = limits.single_payment_limit;
  if (single !== null && finalMinor > single) {
    return refusal('LIMIT_EXCEEDED', `The card pays at most ${formatMinor(single)} at a time`, { limit: 'single_payment_limit', value: formatMinor(single), amount: formatMinor(finalMinor) });
  }
  const daily = limits.daily_spend_limit;
  if (daily !== null && today.spentMinor + finalMinor > daily) {
    return refusal('LIMIT_EXCEEDED', `The card spends at most ${formatMinor(daily)} a day`, {
      limit: 'daily_spend_limit',
      value: formatMinor(daily),
      spent_today: formatMinor(today.spentMinor),
      amount: formatMinor(finalMinor),
    });
  }
  const count = limits.daily_payment_count;
  if (count !== null && today.payments + 1 > count) {
    return refusal('LIMIT_EXCEEDED', `The card makes at most ${count} payments a day`, { limit: 'daily_payment_count', value: count, payments_today: today.payments });
  }
  return null;
}

/**
 * Who may set what: operators (admin and app keys) any limit; a card's owner may tighten the
 * platform's limits but not lift them (a value above the platform default, where there is one),
 * so a member cannot switch off the operator's cap. Null (back to the default) is always allowed.
 */
export function limitChangeRefusal(change: Partial<CardLimits>, defaults: CardLimits, byOperator: boolean): Refusal | null {
  if (byOperator) return null;
  for (const name of LIMIT_NAMES) {
    const value = change[name];
    const platform = defaults[name];
    if (value !== undefined && value !== null && platform !== null && value > platform) {
      const shown = name === 'daily_payment_count' ? platform : formatMinor(platform);
      return refusal('FORBIDDEN', `Only an operator may set ${name} above the platform's ${shown}`, { limit: name, platform_default: shown });
    }
  }
  return null;
}
