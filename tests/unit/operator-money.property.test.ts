import { expect } from 'chai';
import fc from 'fast-check';
import { effectiveLimits, type CardLimits } from '../../domain/card-limits.js';
import { decideAdjustment } from '../../domain/decide-adjustment.js';
import { decideCharge } from '../../domain/decide-charge.js';
import { decideRecharge } from '../../domain/decide-recharge.js';
import { decideRechargeReversal } from '../../domain/decide-recharge-reversal.js';
import { isRefusal } from '../../domain/decision.js';
import { chargeState, LEVELS, PRESENTED } from './decisions-fixtures.js';

/** Fixed, so that a failure reproduces; FC_SEED / FC_RUNS to explore (as decisions.property.test.ts). */
const SEED = Number(process.env.FC_SEED ?? 20_261_201);
const RUNS = Number(process.env.FC_RUNS ?? 500);
const options = { seed: SEED, numRuns: RUNS };
const MAX_BALANCE = 10_000_000;

describe(`domain decisions of the operator money tools: properties (seed ${SEED}, ${RUNS} runs)`, () => {
  it('adjustments, interleaved with charges and recharges, never take a balance below 0 nor above MAX_BALANCE; a refusal changes nothing', () => {
    const step = fc.oneof(
      fc.record({ kind: fc.constant('adjust' as const), amountMinor: fc.integer({ min: -MAX_BALANCE, max: MAX_BALANCE }).filter((a) => a !== 0) }),
      fc.record({ kind: fc.constant('charge' as const), amountMinor: fc.integer({ min: 1, max: MAX_BALANCE }) }),
      fc.record({ kind: fc.constant('recharge' as const), amountMinor: fc.integer({ min: 1, max: MAX_BALANCE }) }),
    );
    fc.assert(
      fc.property(fc.integer({ min: 0, max: MAX_BALANCE }), fc.array(step, { maxLength: 40 }), (start, steps) => {
        let balance = start;
        const card = () => ({ id: 'card-1', type: 'prepaid' as const, status: 'active', is_expired: false, balance_minor: balance });
        for (const s of steps) {
          if (s.kind === 'adjust') {
            const p = decideAdjustment({ card: card() }, s, { maxBalanceMinor: MAX_BALANCE });
            if (isRefusal(p)) {
              expect(p.refused).to.be.oneOf(['INSUFFICIENT_BALANCE', 'BALANCE_LIMIT_EXCEEDED']);
              expect(balance + s.amountMinor < 0 || balance + s.amountMinor > MAX_BALANCE).to.equal(true);
              continue;
            }
            expect(p.deltaMinor).to.equal(s.amountMinor);
            expect(p.balanceAfterMinor).to.equal(balance + s.amountMinor);
            balance = p.balanceAfterMinor;
          } else if (s.kind === 'charge') {
            const p = decideCharge(chargeState({ balance_minor: balance }), { ...s, paymentMethod: null, presentedAt: PRESENTED }, { levels: LEVELS });
            if (!isRefusal(p)) balance = p.balanceAfterMinor;
          } else {
            const p = decideRecharge({ card: card(), ownerStatus: 'active' }, s, { maxBalanceMinor: MAX_BALANCE });
            if (!isRefusal(p)) balance = p.balanceAfterMinor;
          }
          expect(balance).to.be.within(0, MAX_BALANCE);
        }
      }),
      options,
    );
  });

  it('reversals of a recharge never take back more than it credited, nor more than the card holds, whatever the card spends in between', () => {
    const scenario = fc.record({
      rechargedMinor: fc.integer({ min: 1, max: 5_000_000 }),
      otherBalance: fc.nat({ max: 5_000_000 }),
      steps: fc.array(fc.record({ reverseMinor: fc.integer({ min: 1, max: 6_000_000 }), spendMinor: fc.nat({ max: 2_000_000 }) }), { maxLength: 25 }),
    });
    fc.assert(
      fc.property(scenario, ({ rechargedMinor, otherBalance, steps }) => {
        let balance = otherBalance + rechargedMinor;
        let reversed = 0;
        let takenBack = 0;
        for (const s of steps) {
          balance -= Math.min(balance, s.spendMinor);
          const p = decideRechargeReversal(
            { card: { id: 'card-1', status: 'active', balance_minor: balance }, recharge: { card_id: 'card-1', final_amount_minor: rechargedMinor, refunded_amount_minor: reversed } },
            { amountMinor: s.reverseMinor },
          );
          if (isRefusal(p)) {
            if (p.refused === 'REFUND_EXCEEDS_AVAILABLE') expect(reversed + s.reverseMinor).to.be.above(rechargedMinor);
            else {
              expect(p.refused).to.equal('INSUFFICIENT_BALANCE');
              expect(reversed + s.reverseMinor).to.be.at.most(rechargedMinor);
              expect(s.reverseMinor).to.be.above(balance);
            }
            continue;
          }
          expect(p.balanceAfterMinor).to.equal(balance - s.reverseMinor);
          balance = p.balanceAfterMinor;
          reversed = p.reversedTotalMinor;
          takenBack += p.amountMinor;
          expect(p.rechargeStatusAfter).to.equal(reversed === rechargedMinor ? 'refunded' : 'partially_refunded');
          expect(balance).to.be.at.least(0);
        }
        expect(reversed).to.equal(takenBack);
        expect(reversed).to.be.at.most(rechargedMinor);
      }),
      options,
    );
  });

  it("a day's payments from a balance stay within its limits: each ≤ the single limit, their sum ≤ the daily spend, their number ≤ the daily count", () => {
    const limitValue = (max: number) => fc.option(fc.integer({ min: 1, max }), { nil: null });
    const limitsArb = fc.record({ single_payment_limit: limitValue(50_000), daily_spend_limit: limitValue(200_000), daily_payment_count: limitValue(12) });
    fc.assert(
      fc.property(limitsArb, limitsArb, fc.array(fc.integer({ min: 1, max: 60_000 }), { maxLength: 30 }), (own: CardLimits, platform: CardLimits, amounts) => {
        const { limits } = effectiveLimits(own, platform);
        let spent = 0;
        let payments = 0;
        for (const amountMinor of amounts) {
          const state = chargeState({ balance_minor: Number.MAX_SAFE_INTEGER }, { limits: { card: own, today: { spentMinor: spent, payments } } });
          const p = decideCharge(state, { amountMinor, paymentMethod: null, presentedAt: PRESENTED }, { levels: LEVELS, limitDefaults: platform });
          if (isRefusal(p)) {
            expect(p.refused).to.equal('LIMIT_EXCEEDED');
            // The named limit is in force and really broken (a regular card pays final = raw).
            const limit = p.details!.limit as keyof CardLimits;
            const value = limits[limit]!;
            expect(value).to.be.a('number');
            const broken = { single_payment_limit: amountMinor > value, daily_spend_limit: spent + amountMinor > value, daily_payment_count: payments + 1 > value };
            expect(broken[limit], limit).to.equal(true);
            continue;
          }
          expect(p.finalMinor).to.equal(amountMinor);
          if (limits.single_payment_limit !== null) expect(p.finalMinor).to.be.at.most(limits.single_payment_limit);
          spent += p.finalMinor;
          payments += 1;
        }
        if (limits.daily_spend_limit !== null) expect(spent).to.be.at.most(limits.daily_spend_limit);
        if (limits.daily_payment_count !== null) expect(payments).to.be.at.most(limits.daily_payment_count);
        if (Object.values(limits).every((v) => v === null)) expect(payments).to.equal(amounts.length);
      }),
      options,
    );
  });
});
