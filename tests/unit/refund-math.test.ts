import { expect } from 'chai';
import fc from 'fast-check';
import { paymentStatusAfterRefund, pointsClawback } from '../../domain/refund-math.js';

const UNLIMITED = Number.MAX_SAFE_INTEGER;

/** floor(pointsEarned × total / final) computed in bigint, independently of the module. */
const expectedTotal = (pointsEarned: number, total: number, final: number) => Number((BigInt(pointsEarned) * BigInt(total)) / BigInt(final));

/** A payment and a sequence of positive partial refunds whose sum is at most its final amount. */
const refundScenario = fc
  .record({ pointsEarned: fc.nat({ max: 1_000_000 }), finalMinor: fc.integer({ min: 1, max: 100_000_000 }) })
  .chain(({ pointsEarned, finalMinor }) =>
    fc
      .record({
        cuts: fc.uniqueArray(fc.integer({ min: 1, max: finalMinor }), { maxLength: 12 }),
        full: fc.boolean(),
      })
      .map(({ cuts, full }) => {
        const points = [...new Set(full ? [...cuts, finalMinor] : cuts)].sort((a, b) => a - b);
        const refunds = points.map((p, i) => p - (i === 0 ? 0 : points[i - 1]!));
        return { pointsEarned, finalMinor, refunds };
      }),
  );

describe('domain/refund-math', () => {
  describe('pointsClawback', () => {
    it('claws back floor(points × refunded / final) in total for any split of the refunds', () => {
      fc.assert(
        fc.property(refundScenario, ({ pointsEarned, finalMinor, refunds }) => {
          let refundedBefore = 0;
          let clawed = 0;
          for (const refundMinor of refunds) {
            expect(refundMinor).to.be.greaterThan(0);
            const c = pointsClawback({ pointsEarned, finalMinor, refundedBeforeMinor: refundedBefore, refundMinor, cardPoints: UNLIMITED });
            expect(Number.isSafeInteger(c)).to.equal(true);
            expect(c).to.be.at.least(0);
            clawed += c;
            refundedBefore += refundMinor;
            // the running total is right after every step, not only at the end
            expect(clawed).to.equal(expectedTotal(pointsEarned, refundedBefore, finalMinor));
          }
          expect(refundedBefore).to.be.at.most(finalMinor);
          expect(clawed).to.equal(expectedTotal(pointsEarned, refundedBefore, finalMinor));
          expect(clawed).to.be.at.most(pointsEarned);
        }),
        { numRuns: 500 },
      );
    });

    it('claws back every point on a full refund, in one go or in pieces', () => {
      const one = pointsClawback({ pointsEarned: 299, finalMinor: 28_405, refundedBeforeMinor: 0, refundMinor: 28_405, cardPoints: UNLIMITED });
      expect(one).to.equal(299);
      const first = pointsClawback({ pointsEarned: 299, finalMinor: 28_405, refundedBeforeMinor: 0, refundMinor: 10_000, cardPoints: UNLIMITED });
      const second = pointsClawback({ pointsEarned: 299, finalMinor: 28_405, refundedBeforeMinor: 10_000, refundMinor: 18_405, cardPoints: UNLIMITED });
      expect(first).to.equal(105); // floor(299 × 10000 / 28405) = floor(105.26)
      expect(second).to.equal(194);
    });

    it('does not let many tiny refunds each round to zero and lose points', () => {
      // 100 points on a 1.00 payment refunded cent by cent: each cent is worth exactly one point
      let clawed = 0;
      for (let i = 0; i < 100; i++) {
        clawed += pointsClawback({ pointsEarned: 100, finalMinor: 100, refundedBeforeMinor: i, refundMinor: 1, cardPoints: UNLIMITED });
      }
      expect(clawed).to.equal(100);
      // 1 point on a 3.00 payment: only the refund that crosses the whole point claws it
      const parts = [100, 100, 100].map((r, i) =>
        pointsClawback({ pointsEarned: 1, finalMinor: 300, refundedBeforeMinor: i * 100, refundMinor: r, cardPoints: UNLIMITED }),
      );
      expect(parts).to.deep.equal([0, 0, 1]);
    });

    it('never takes more than the card holds now', () => {
      const base = { pointsEarned: 299, finalMinor: 28_405, refundedBeforeMinor: 0, refundMinor: 28_405 };
      expect(pointsClawback({ ...base, cardPoints: 50 })).to.equal(50);
      expect(pointsClawback({ ...base, cardPoints: 0 })).to.equal(0);
      expect(pointsClawback({ ...base, cardPoints: 299 })).to.equal(299);
      expect(pointsClawback({ ...base, cardPoints: 1000 })).to.equal(299);
    });

    it('is min(due, card points) and never negative, whatever the card holds', () => {
      fc.assert(
        fc.property(refundScenario, fc.integer({ min: -10, max: 2_000_000 }), ({ pointsEarned, finalMinor, refunds }, cardPoints) => {
          const refundMinor = refunds.at(-1) ?? 1;
          const before = refunds.slice(0, -1).reduce((a, b) => a + b, 0);
          const due = expectedTotal(pointsEarned, before + refundMinor, finalMinor) - expectedTotal(pointsEarned, before, finalMinor);
          const got = pointsClawback({ pointsEarned, finalMinor, refundedBeforeMinor: before, refundMinor, cardPoints });
          expect(got).to.equal(Math.max(0, Math.min(due, cardPoints)));
        }),
        { numRuns: 300 },
      );
    });

    it('claws nothing back when the payment earned nothing or had no final amount', () => {
      expect(pointsClawback({ pointsEarned: 0, finalMinor: 28_405, refundedBeforeMinor: 0, refundMinor: 28_405, cardPoints: 500 })).to.equal(0);
      expect(pointsClawback({ pointsEarned: 299, finalMinor: 0, refundedBeforeMinor: 0, refundMinor: 0, cardPoints: 500 })).to.equal(0);
    });
  });

  describe('paymentStatusAfterRefund', () => {
    it('is completed before any refund', () => {
      expect(paymentStatusAfterRefund(28_405, 0)).to.equal('completed');
    });
    it('is partially_refunded while something is left', () => {
      expect(paymentStatusAfterRefund(28_405, 1)).to.equal('partially_refunded');
      expect(paymentStatusAfterRefund(28_405, 28_404)).to.equal('partially_refunded');
    });
    it('is refunded once the whole final amount is back', () => {
      expect(paymentStatusAfterRefund(28_405, 28_405)).to.equal('refunded');
    });
  });
});
