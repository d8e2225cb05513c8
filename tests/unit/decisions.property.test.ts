import { expect } from 'chai';
import fc from 'fast-check';
import { decideCharge } from '../../domain/decide-charge.js';
import { decideRecharge } from '../../domain/decide-recharge.js';
import { decideRefund } from '../../domain/decide-refund.js';
import { isRefusal } from '../../domain/decision.js';
import type { CardType } from '../../domain/discount.js';
import { levelFor } from '../../domain/levels.js';
import { chargeState, LEVELS, PRESENTED } from './decisions-fixtures.js';

/** Fixed, so that a failure reproduces; FC_SEED / FC_RUNS to explore (as tests/e2e/randomized.test.ts). */
const SEED = Number(process.env.FC_SEED ?? 20_261_201);
const RUNS = Number(process.env.FC_RUNS ?? 500);
const options = { seed: SEED, numRuns: RUNS };

const MAX_BALANCE = 10_000_000;
const cardType = fc.constantFrom<CardType>('standard', 'prepaid', 'corporate', 'voucher');
const amount = fc.integer({ min: 1, max: 2_000_000 });
/** round half up (raw × rate / 1000), computed independently in bigint. */
const roundHalfUp = (raw: number, milli: number) => Number((BigInt(raw) * BigInt(milli) * 2n + 1000n) / 2000n);

describe(`domain decisions: money properties (seed ${SEED}, ${RUNS} runs)`, () => {
  it('charges final = round half up (raw × rate) ≤ raw, with the level before the payment, and points = floor(raw) for standard/prepaid', () => {
    fc.assert(
      fc.property(cardType, amount, fc.nat({ max: 50_000 }), fc.integer({ min: 0, max: 1000 }), (type, raw, points, fixed) => {
        const level = levelFor(points, LEVELS);
        const state = chargeState({ type, points, level: level.level, balance_minor: Number.MAX_SAFE_INTEGER, fixed_discount: (fixed / 1000).toFixed(3) });
        const p = decideCharge(state, { amountMinor: raw, paymentMethod: 'card', presentedAt: PRESENTED }, { levels: LEVELS });
        if (isRefusal(p)) throw new Error(`refused: ${p.refused}`);
        const rate = type === 'corporate' ? fixed : type === 'voucher' ? 1000 : level.discountMilli;
        expect(p.discountMilli).to.equal(rate);
        expect(p.finalMinor).to.equal(roundHalfUp(raw, rate));
        expect(p.finalMinor).to.be.at.most(raw);
        const earns = type === 'standard' || type === 'prepaid';
        expect(p.pointsEarned).to.equal(earns ? Math.floor(raw / 100) : 0);
        expect(p.levelAfter).to.equal(p.pointsEarned ? levelFor(points + p.pointsEarned, LEVELS).level : level.level);
        expect(p.balanceDeltaMinor).to.equal(type === 'standard' ? 0 : -p.finalMinor);
      }),
      options,
    );
  });

  it('never takes a balance below 0 nor recharges it above MAX_BALANCE, whatever the sequence of charges and recharges', () => {
    const step = fc.record({ kind: fc.constantFrom('charge', 'recharge'), amountMinor: fc.integer({ min: 1, max: MAX_BALANCE }) });
    fc.assert(
      fc.property(fc.constantFrom<CardType>('prepaid', 'corporate'), fc.integer({ min: 0, max: MAX_BALANCE }), fc.array(step, { maxLength: 30 }), (type, start, steps) => {
        let balance = start;
        let points = 0;
        let level = 0;
        for (const s of steps) {
          if (s.kind === 'recharge') {
            const p = decideRecharge({ card: { type, status: 'active', is_expired: false, balance_minor: balance }, ownerStatus: 'active' }, s, { maxBalanceMinor: MAX_BALANCE });
            if (isRefusal(p)) {
              expect(p.refused).to.equal('BALANCE_LIMIT_EXCEEDED');
              expect(balance + s.amountMinor).to.be.above(MAX_BALANCE);
              continue;
            }
            balance = p.balanceAfterMinor;
          } else {
            const p = decideCharge(chargeState({ type, balance_minor: balance, points, level, fixed_discount: '0.900' }), { ...s, paymentMethod: null, presentedAt: PRESENTED }, { levels: LEVELS });
            if (isRefusal(p)) {
              expect(p.refused).to.equal('INSUFFICIENT_BALANCE');
              continue;
            }
            expect(p.balanceAfterMinor).to.equal(balance + p.balanceDeltaMinor);
            ({ balanceAfterMinor: balance, pointsAfter: points, levelAfter: level } = p);
          }
          expect(balance).to.be.within(0, MAX_BALANCE);
        }
      }),
      options,
    );
  });

  it('never refunds more than the final amount, never claws more than was earned, and never takes card points below 0', () => {
    const scenario = fc.record({
      finalMinor: fc.integer({ min: 1, max: 2_000_000 }),
      pointsEarned: fc.nat({ max: 20_000 }),
      cardPoints: fc.nat({ max: 40_000 }),
      viaBalance: fc.boolean(),
      // Each refund asks for up to the whole payment; points the card spends elsewhere in between.
      steps: fc.array(fc.record({ amountPermille: fc.integer({ min: 1, max: 1000 }), spent: fc.nat({ max: 5000 }) }), { maxLength: 20 }),
    });
    fc.assert(
      fc.property(scenario, ({ finalMinor, pointsEarned, cardPoints, viaBalance, steps }) => {
        let refunded = 0;
        let clawedTotal = 0;
        let points = cardPoints;
        let credited = 0;
        for (const s of steps) {
          points = Math.max(0, points - s.spent);
          const amountMinor = Math.max(1, Math.floor((finalMinor * s.amountPermille) / 1000));
          const p = decideRefund(
            {
              card: { id: 'card-1', type: 'prepaid', status: 'active', points, level: levelFor(points, LEVELS).level },
              payment: { card_id: 'card-1', final_amount_minor: finalMinor, refunded_amount_minor: refunded, points_earned: pointsEarned, via_balance: viaBalance, window_passed: false },
            },
            { amountMinor },
            { refundWindowDays: 90, levels: LEVELS },
          );
          if (isRefusal(p)) {
            expect(p.refused).to.equal('REFUND_EXCEEDS_AVAILABLE');
            expect(refunded + amountMinor).to.be.above(finalMinor);
            continue;
          }
          refunded = p.refundedTotalMinor;
          clawedTotal += p.pointsClawed;
          credited += p.balanceDeltaMinor;
          expect(p.pointsAfter).to.equal(points - p.pointsClawed);
          points = p.pointsAfter;
          expect(points).to.be.at.least(0);
          expect(p.pointsClawed).to.be.at.least(0);
          expect(clawedTotal).to.be.at.most(Math.floor((pointsEarned * refunded) / finalMinor));
          expect(p.paymentStatusAfter).to.equal(refunded === finalMinor ? 'refunded' : 'partially_refunded');
        }
        expect(refunded).to.be.at.most(finalMinor);
        expect(clawedTotal).to.be.at.most(pointsEarned);
        expect(credited).to.equal(viaBalance ? refunded : 0);
      }),
      options,
    );
  });

  it('claws back exactly floor(points × refunded / final) in total when the card keeps its points', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 1_000_000 }), fc.nat({ max: 10_000 }), fc.array(fc.integer({ min: 1, max: 1000 }), { maxLength: 10 }), (finalMinor, pointsEarned, cuts) => {
        let refunded = 0;
        let clawed = 0;
        for (const permille of cuts) {
          const amountMinor = Math.min(finalMinor - refunded, Math.max(1, Math.floor((finalMinor * permille) / 1000)));
          if (amountMinor <= 0) break;
          const p = decideRefund(
            {
              card: { id: 'c', type: 'standard', status: 'active', points: pointsEarned, level: 0 },
              payment: { card_id: 'c', final_amount_minor: finalMinor, refunded_amount_minor: refunded, points_earned: pointsEarned, via_balance: false, window_passed: false },
            },
            { amountMinor },
            { refundWindowDays: 90, levels: LEVELS },
          );
          if (isRefusal(p)) throw new Error(`refused: ${p.refused}`);
          refunded = p.refundedTotalMinor;
          clawed += p.pointsClawed;
        }
        expect(clawed).to.equal(Number((BigInt(pointsEarned) * BigInt(refunded)) / BigInt(finalMinor)));
      }),
      options,
    );
  });
});
