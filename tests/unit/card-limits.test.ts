import { expect } from 'chai';
import { countsToday, effectiveLimits, limitChangeRefusal, limitRefusal, NO_LIMITS, type CardLimits } from '../../domain/card-limits.js';
import { decideCharge, type ChargePlan } from '../../domain/decide-charge.js';
import { isRefusal } from '../../domain/decision.js';
import { chargeState, LEVELS, PRESENTED } from './decisions-fixtures.js';

const limits = (l: Partial<CardLimits>): CardLimits => ({ ...NO_LIMITS, ...l });
const none = { spentMinor: 0, payments: 0 };

describe('domain/card-limits', () => {
  it("the card's own limit wins over the platform's; null on the card means the platform's, null there means none", () => {
    const own = limits({ single_payment_limit: 5000 });
    const platform = limits({ single_payment_limit: 100_000, daily_payment_count: 10 });
    expect(effectiveLimits(own, platform)).to.deep.equal({
      limits: { single_payment_limit: 5000, daily_spend_limit: null, daily_payment_count: 10 },
      source: { single_payment_limit: 'card', daily_spend_limit: 'platform', daily_payment_count: 'platform' },
    });
    expect(countsToday(limits({ single_payment_limit: 1 }))).to.equal(false);
    expect(countsToday(limits({ daily_spend_limit: 1 }))).to.equal(true);
    expect(countsToday(limits({ daily_payment_count: 1 }))).to.equal(true);
  });

  it('a limit is a ceiling the payment may reach: exactly the limit passes, one minor unit over is LIMIT_EXCEEDED naming it', () => {
    expect(limitRefusal(limits({ single_payment_limit: 5000 }), none, 5000)).to.equal(null);
    expect(limitRefusal(limits({ single_payment_limit: 5000 }), none, 5001)).to.deep.equal({
      refused: 'LIMIT_EXCEEDED',
      message: 'The card pays at most 50.00 at a time',
      details: { limit: 'single_payment_limit', value: '50.00', amount: '50.01' },
    });
    expect(limitRefusal(limits({ daily_spend_limit: 10_000 }), { spentMinor: 7000, payments: 3 }, 3000)).to.equal(null);
    expect(limitRefusal(limits({ daily_spend_limit: 10_000 }), { spentMinor: 7000, payments: 3 }, 3001)).to.deep.include({
      refused: 'LIMIT_EXCEEDED',
      details: { limit: 'daily_spend_limit', value: '100.00', spent_today: '70.00', amount: '30.01' },
    });
    expect(limitRefusal(limits({ daily_payment_count: 3 }), { spentMinor: 0, payments: 2 }, 1)).to.equal(null);
    expect(limitRefusal(limits({ daily_payment_count: 3 }), { spentMinor: 0, payments: 3 }, 1)).to.deep.include({ refused: 'LIMIT_EXCEEDED', details: { limit: 'daily_payment_count', value: 3, payments_today: 3 } });
  });

  it('names the first limit broken: single payment, then daily spend, then daily count', () => {
    const all = limits({ single_payment_limit: 100, daily_spend_limit: 100, daily_payment_count: 1 });
    expect(limitRefusal(all, { spentMinor: 100, payments: 1 }, 101)?.details?.limit).to.equal('single_payment_limit');
    expect(limitRefusal(all, { spentMinor: 100, payments: 1 }, 100)?.details?.limit).to.equal('daily_spend_limit');
    expect(limitRefusal(all, { spentMinor: 0, payments: 1 }, 100)?.details?.limit).to.equal('daily_payment_count');
  });

  it('an owner may tighten but not lift a platform limit; operators may do either; null is always allowed', () => {
    const platform = limits({ single_payment_limit: 10_000, daily_payment_count: 5 });
    expect(limitChangeRefusal({ single_payment_limit: 10_000, daily_payment_count: 1 }, platform, false)).to.equal(null);
    expect(limitChangeRefusal({ single_payment_limit: 10_001 }, platform, false)).to.deep.include({ refused: 'FORBIDDEN', details: { limit: 'single_payment_limit', platform_default: '100.00' } });
    expect(limitChangeRefusal({ daily_payment_count: 6 }, platform, false)).to.deep.include({ refused: 'FORBIDDEN', details: { limit: 'daily_payment_count', platform_default: 5 } });
    // No platform limit: the owner sets any.
    expect(limitChangeRefusal({ daily_spend_limit: 99_999_999 }, platform, false)).to.equal(null);
    expect(limitChangeRefusal({ single_payment_limit: null, daily_payment_count: null }, platform, false)).to.equal(null);
    expect(limitChangeRefusal({ single_payment_limit: 10_000_000 }, platform, true)).to.equal(null);
  });
});

describe('domain/decide-charge with limits', () => {
  const request = (amountMinor: number) => ({ amountMinor, paymentMethod: 'cash', presentedAt: PRESENTED });
  const plan = (decision: ReturnType<typeof decideCharge>): ChargePlan => {
    if (isRefusal(decision)) throw new Error(`refused: ${decision.refused}`);
    return decision;
  };

  it('judges the final amount (after the discount) against the limit, before the balance', () => {
    // Silver (1000 points): raw 52.63 → final 50.00 exactly; raw 52.64 → 50.01.
    const silver = chargeState({ points: 1000, level: 1, balance_minor: 100 }, { limits: { card: limits({ single_payment_limit: 5000 }), today: none } });
    expect(decideCharge(silver, request(5263), { levels: LEVELS })).to.include({ refused: 'INSUFFICIENT_BALANCE' });
    expect(decideCharge(silver, request(5264), { levels: LEVELS })).to.include({ refused: 'LIMIT_EXCEEDED' });
    const rich = chargeState({ points: 1000, level: 1 }, { limits: { card: limits({ single_payment_limit: 5000 }), today: none } });
    expect(plan(decideCharge(rich, request(5263), { levels: LEVELS })).finalMinor).to.equal(5000);
  });

  it("the platform's defaults apply where the card has none; the card's own replace them", () => {
    const platform = limits({ daily_payment_count: 2 });
    const today = { spentMinor: 300, payments: 2 };
    expect(decideCharge(chargeState({}, { limits: { card: NO_LIMITS, today } }), request(100), { levels: LEVELS, limitDefaults: platform })).to.deep.include({ refused: 'LIMIT_EXCEEDED', details: { limit: 'daily_payment_count', value: 2, payments_today: 2 } });
    expect(plan(decideCharge(chargeState({}, { limits: { card: limits({ daily_payment_count: 3 }), today } }), request(100), { levels: LEVELS, limitDefaults: platform })).finalMinor).to.equal(100);
  });

  it('a standard card pays with outside money: no limit applies to it', () => {
    const standard = chargeState({ type: 'standard', balance_minor: 0 }, { limits: { card: limits({ single_payment_limit: 1, daily_payment_count: 1 }), today: { spentMinor: 0, payments: 5 } } });
    expect(plan(decideCharge(standard, request(100_000), { levels: LEVELS, limitDefaults: limits({ daily_spend_limit: 1 }) })).finalMinor).to.equal(100_000);
  });

  it('QR and who may pay are judged before the limits', () => {
    const over = { limits: { card: limits({ single_payment_limit: 1 }), today: none } };
    expect(decideCharge(chargeState({}, { ...over, qr: { cardId: null, expiresAt: null } }), request(100), { levels: LEVELS })).to.include({ refused: 'QR_EXPIRED_OR_INVALID' });
    expect(decideCharge(chargeState({ status: 'frozen' }, over), request(100), { levels: LEVELS })).to.include({ refused: 'CARD_NOT_ACTIVE' });
  });
});
