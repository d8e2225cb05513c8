import { expect } from 'chai';
import fc from 'fast-check';
import { applyDiscount, discountRateFor, isRechargeable, isShareable, paysFromBalance, pointsEarned, type CardType } from '../../domain/discount.js';

const TYPES: CardType[] = ['standard', 'prepaid', 'corporate', 'voucher'];

describe('domain/discount', () => {
  describe('applyDiscount', () => {
    it('gives the DESIGN example: raw 299.00 at silver (0.950) → 284.05', () => {
      expect(applyDiscount(29_900, 950)).to.equal(28_405);
    });

    it('leaves the amount alone at 1.000 and zeroes it at 0.000', () => {
      expect(applyDiscount(29_900, 1000)).to.equal(29_900);
      expect(applyDiscount(29_900, 0)).to.equal(0);
    });

    it('rounds half up to the cent', () => {
      expect(applyDiscount(10, 950)).to.equal(10); // 9.5 → 10
      expect(applyDiscount(30, 850)).to.equal(26); // 25.5 → 26
      expect(applyDiscount(1, 500)).to.equal(1); // 0.5 → 1
      expect(applyDiscount(5, 900)).to.equal(5); // 4.5 → 5
      expect(applyDiscount(101, 950)).to.equal(96); // 95.95 → 96
      expect(applyDiscount(109, 950)).to.equal(104); // 103.55 → 104
      expect(applyDiscount(11, 950)).to.equal(10); // 10.45 → 10
      expect(applyDiscount(1, 499)).to.equal(0); // 0.499 → 0
    });

    it('equals the half-up rounding of raw × rate / 1000 and never exceeds raw', () => {
      fc.assert(
        fc.property(fc.integer({ min: 1, max: 100_000_000 }), fc.integer({ min: 0, max: 1000 }), (raw, rate) => {
          const exact = raw * rate; // < 2^53, exact
          const q = Math.floor(exact / 1000);
          const expected = exact % 1000 >= 500 ? q + 1 : q;
          const final = applyDiscount(raw, rate);
          expect(final).to.equal(expected);
          expect(final).to.be.at.most(raw);
        }),
      );
    });
  });

  describe('pointsEarned', () => {
    it('is floor(raw amount) for standard and prepaid cards', () => {
      for (const type of ['standard', 'prepaid'] as const) {
        expect(pointsEarned(29_900, type), type).to.equal(299);
        expect(pointsEarned(29_999, type), type).to.equal(299);
        expect(pointsEarned(30_000, type), type).to.equal(300);
        expect(pointsEarned(99, type), type).to.equal(0);
        expect(pointsEarned(100, type), type).to.equal(1);
        expect(pointsEarned(1, type), type).to.equal(0);
      }
    });

    it('is 0 for corporate and voucher cards', () => {
      for (const type of ['corporate', 'voucher'] as const) {
        expect(pointsEarned(29_900, type), type).to.equal(0);
        expect(pointsEarned(100_000_000, type), type).to.equal(0);
      }
    });

    it('counts the raw amount, not the discounted one', () => {
      // 299.00 at silver pays 284.05 but earns 299 points
      expect(pointsEarned(29_900, 'prepaid')).to.equal(299);
      expect(pointsEarned(applyDiscount(29_900, 950), 'prepaid')).to.equal(284);
    });
  });

  describe('discountRateFor', () => {
    it('uses the level rate for standard and prepaid cards', () => {
      expect(discountRateFor('standard', 950, null)).to.equal(950);
      expect(discountRateFor('prepaid', 850, null)).to.equal(850);
      expect(discountRateFor('prepaid', 900, 700)).to.equal(900);
    });

    it("uses a corporate card's fixed discount, and none when it has no fixed discount", () => {
      expect(discountRateFor('corporate', 850, 800)).to.equal(800);
      expect(discountRateFor('corporate', 850, 0)).to.equal(0);
      expect(discountRateFor('corporate', 850, null)).to.equal(1000);
    });

    it('gives vouchers no discount whatever the level', () => {
      expect(discountRateFor('voucher', 850, null)).to.equal(1000);
      expect(discountRateFor('voucher', 850, 500)).to.equal(1000);
    });
  });

  describe('card type capabilities (DESIGN card types table)', () => {
    const table: Record<CardType, { shareable: boolean; recharge: boolean; balance: boolean }> = {
      standard: { shareable: false, recharge: false, balance: false },
      prepaid: { shareable: true, recharge: true, balance: true },
      corporate: { shareable: true, recharge: true, balance: true },
      voucher: { shareable: false, recharge: false, balance: true },
    };
    for (const type of TYPES) {
      it(`${type}: shareable=${table[type].shareable}, recharge=${table[type].recharge}, pays from balance=${table[type].balance}`, () => {
        expect(isShareable(type)).to.equal(table[type].shareable);
        expect(isRechargeable(type)).to.equal(table[type].recharge);
        expect(paysFromBalance(type)).to.equal(table[type].balance);
      });
    }
  });
});
