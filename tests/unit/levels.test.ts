import { expect } from 'chai';
import fc from 'fast-check';
import { levelFor, type Level } from '../../domain/levels.js';

/** The seeded membership_levels table (DESIGN "Levels, discount, points"). */
const SEEDED: readonly Level[] = [
  { level: 0, name: 'regular', minPoints: 0, discountMilli: 1000 },
  { level: 1, name: 'silver', minPoints: 1000, discountMilli: 950 },
  { level: 2, name: 'gold', minPoints: 5000, discountMilli: 900 },
  { level: 3, name: 'diamond', minPoints: 10_000, discountMilli: 850 },
];

describe('domain/levels levelFor', () => {
  const boundaries: [number, number, number][] = [
    [0, 0, 1000],
    [999, 0, 1000],
    [1000, 1, 950],
    [4999, 1, 950],
    [5000, 2, 900],
    [9999, 2, 900],
    [10_000, 3, 850],
    [10_000_000, 3, 850],
  ];
  for (const [points, level, rate] of boundaries) {
    it(`${points} points → level ${level} at ${rate}‰`, () => {
      const got = levelFor(points, SEEDED);
      expect(got.level).to.equal(level);
      expect(got.discountMilli).to.equal(rate);
    });
  }

  it('does not depend on the order of the table', () => {
    const shuffled = [SEEDED[2]!, SEEDED[0]!, SEEDED[3]!, SEEDED[1]!];
    fc.assert(
      fc.property(fc.nat({ max: 20_000 }), (points) => {
        expect(levelFor(points, shuffled)).to.deep.equal(levelFor(points, SEEDED));
      }),
    );
  });

  it('never goes down as points grow', () => {
    fc.assert(
      fc.property(fc.nat({ max: 20_000 }), fc.nat({ max: 20_000 }), (a, b) => {
        const [lo, hi] = a <= b ? [a, b] : [b, a];
        expect(levelFor(lo, SEEDED).level).to.be.at.most(levelFor(hi, SEEDED).level);
      }),
    );
  });

  it('follows an admin-edited table', () => {
    const edited: Level[] = [
      { level: 0, name: 'regular', minPoints: 0, discountMilli: 1000 },
      { level: 1, name: 'silver', minPoints: 500, discountMilli: 970 },
    ];
    expect(levelFor(499, edited).level).to.equal(0);
    expect(levelFor(500, edited).discountMilli).to.equal(970);
    expect(levelFor(10_000, edited).level).to.equal(1);
  });

  it('refuses a table without a level at 0 points', () => {
    expect(() => levelFor(0, SEEDED.slice(1))).to.throw(RangeError);
    expect(() => levelFor(5, [])).to.throw(RangeError);
  });
});
