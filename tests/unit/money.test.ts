import { expect } from 'chai';
import fc from 'fast-check';
import { AppError } from '../../domain/errors.js';
import { formatMinor, formatRate, mulDivRoundHalfUp, parseAmount, parseRate } from '../../domain/money.js';

const MAX = 100_000_000; // the default MAX_AMOUNT, 1,000,000.00 in minor units

function expectAmountInvalid(input: unknown, max = MAX): void {
  let caught: unknown;
  try {
    const got = parseAmount(input, max);
    expect.fail(`parseAmount(${String(input)}) should have thrown, returned ${got}`);
  } catch (err) {
    caught = err;
  }
  expect(caught, `input ${String(input)}`).to.be.instanceOf(AppError);
  const e = caught as AppError;
  expect(e.code).to.equal('AMOUNT_INVALID');
  expect(e.status).to.equal(400);
  expect(e.retryable).to.equal(false);
}

describe('domain/money', () => {
  describe('parseAmount', () => {
    const accepted: [unknown, number][] = [
      [299, 29_900],
      ['299', 29_900],
      ['299.00', 29_900],
      ['299.5', 29_950],
      [12.5, 1_250],
      [12.05, 1_205],
      ['0.01', 1],
      [0.01, 1],
      ['0.10', 10],
      [1e3, 100_000], // a JSON number written 1e3 is just the number 1000
      ['1000000.00', MAX],
      [1_000_000, MAX],
    ];
    for (const [input, minor] of accepted) {
      it(`accepts ${typeof input} ${JSON.stringify(input)} as ${minor} minor`, () => {
        expect(parseAmount(input, MAX)).to.equal(minor);
      });
    }

    const rejected: [string, unknown][] = [
      ['zero', 0],
      ['negative zero', -0],
      ['"0"', '0'],
      ['"0.00"', '0.00'],
      ['a negative number', -1],
      ['a negative string', '-1.00'],
      ['an explicit plus sign', '+1'],
      ['an exponent string', '1e3'],
      ['an exponent string with decimals', '2.5E2'],
      ['1e21 (stringifies with an exponent)', 1e21],
      ['a tiny number (stringifies with an exponent)', 5e-7],
      ['NaN', Number.NaN],
      ['Infinity', Number.POSITIVE_INFINITY],
      ['-Infinity', Number.NEGATIVE_INFINITY],
      ['"NaN"', 'NaN'],
      ['"Infinity"', 'Infinity'],
      ['three decimals (string)', '299.001'],
      ['three decimals (number)', 299.001],
      ['binary-float noise 0.1 + 0.2', 0.1 + 0.2],
      ['a leading space', ' 1'],
      ['a trailing space', '1 '],
      ['a trailing newline', '1\n'],
      ['a trailing dot', '1.'],
      ['a leading dot', '.5'],
      ['a leading zero', '01'],
      ['a leading zero with decimals', '00.50'],
      ['a thousands separator', '1,000'],
      ['a decimal comma', '1,50'],
      ['hex', '0x10'],
      ['the empty string', ''],
      ['one cent over the max (string)', '1000000.01'],
      ['one cent over the max (number)', 1_000_000.01],
      ['far over the max', '999999999999999.99'],
      ['more than 15 integer digits', '1234567890123456'],
      ['null', null],
      ['undefined', undefined],
      ['a boolean', true],
      ['a bigint', 299n],
      ['an object', { amount: 299 }],
      ['an array', ['299']],
      ['a Number object', new Number(299)],
    ];
    for (const [label, input] of rejected) {
      it(`rejects ${label} with AMOUNT_INVALID`, () => expectAmountInvalid(input));
    }

    it('honours the given maximum exactly at the boundary', () => {
      expect(parseAmount('500.00', 50_000)).to.equal(50_000);
      expectAmountInvalid('500.01', 50_000);
    });

    it('names the field in the error details and message', () => {
      try {
        parseAmount('abc', MAX, 'refund_amount');
        expect.fail('should have thrown');
      } catch (err) {
        expect(err).to.be.instanceOf(AppError);
        expect((err as AppError).details).to.deep.equal({ field: 'refund_amount' });
        expect((err as AppError).message).to.contain('refund_amount');
      }
    });

    it('round-trips formatMinor for every minor amount in 1..1e8', () => {
      fc.assert(
        fc.property(fc.integer({ min: 1, max: 100_000_000 }), (m) => {
          expect(parseAmount(formatMinor(m), MAX)).to.equal(m);
        }),
        { numRuns: 2000 },
      );
    });

    it('accepts the JSON number m / 100 as m minor for every m in 1..1e8', () => {
      fc.assert(
        fc.property(fc.integer({ min: 1, max: 100_000_000 }), (m) => {
          expect(parseAmount(m / 100, MAX)).to.equal(m);
        }),
        { numRuns: 2000 },
      );
    });

    it('rejects any amount with a third non-zero decimal', () => {
      fc.assert(
        fc.property(fc.integer({ min: 0, max: 99_999_999 }), fc.integer({ min: 1, max: 9 }), (m, d) => {
          expectAmountInvalid(`${formatMinor(m)}${d}`);
        }),
        { numRuns: 300 },
      );
    });
  });

  describe('formatMinor', () => {
    const cases: [number, string][] = [
      [28_405, '284.05'],
      [5, '0.05'],
      [50, '0.50'],
      [0, '0.00'],
      [100, '1.00'],
      [100_000_000, '1000000.00'],
      [-5, '-0.05'],
      [-28_405, '-284.05'],
      [-100, '-1.00'],
      [Number.MAX_SAFE_INTEGER, '90071992547409.91'],
    ];
    for (const [minor, text] of cases) {
      it(`formats ${minor} as "${text}"`, () => expect(formatMinor(minor)).to.equal(text));
    }

    it('always writes exactly two decimals', () => {
      fc.assert(
        fc.property(fc.integer({ min: -1e12, max: 1e12 }), (m) => {
          expect(formatMinor(m)).to.match(/^-?(0|[1-9]\d*)\.\d{2}$/);
        }),
      );
    });

    for (const bad of [1.5, Number.NaN, Number.POSITIVE_INFINITY, Number.MAX_SAFE_INTEGER + 1]) {
      it(`refuses ${bad}, which is not a minor-unit amount`, () => {
        expect(() => formatMinor(bad)).to.throw(RangeError);
      });
    }
  });

  describe('parseRate / formatRate', () => {
    const rates: [string | number, number][] = [
      ['1.000', 1000],
      ['0.950', 950],
      ['0.900', 900],
      ['0.850', 850],
      ['0.000', 0],
      ['0', 0],
      ['1', 1000],
      [0.95, 950],
      [0.85, 850],
      [0.001, 1],
    ];
    for (const [text, milli] of rates) {
      it(`parses ${JSON.stringify(text)} as ${milli}‰`, () => expect(parseRate(text)).to.equal(milli));
    }

    const badRates: (string | number)[] = ['1.001', 1.5, '-0.001', -1, 'abc', 'NaN', Number.NaN, Number.POSITIVE_INFINITY, '', ' ', '\t'];
    for (const bad of badRates) {
      it(`rejects ${JSON.stringify(bad) ?? String(bad)}`, () => expect(() => parseRate(bad)).to.throw(RangeError));
    }

    const formats: [number, string][] = [
      [950, '0.950'],
      [1000, '1.000'],
      [0, '0.000'],
      [1, '0.001'],
      [85, '0.085'],
    ];
    for (const [milli, text] of formats) {
      it(`formats ${milli}‰ as "${text}"`, () => expect(formatRate(milli)).to.equal(text));
    }

    it('round-trips every rate 0..1000 through formatRate and parseRate', () => {
      for (let milli = 0; milli <= 1000; milli++) {
        const text = formatRate(milli);
        expect(text).to.match(/^[01]\.\d{3}$/);
        expect(parseRate(text)).to.equal(milli);
      }
    });
  });

  describe('mulDivRoundHalfUp', () => {
    it('rounds exactly .5 up', () => {
      expect(mulDivRoundHalfUp(1, 1, 2)).to.equal(1); // 0.5
      expect(mulDivRoundHalfUp(3, 1, 2)).to.equal(2); // 1.5
      expect(mulDivRoundHalfUp(5, 1, 2)).to.equal(3); // 2.5, not banker's 2
      expect(mulDivRoundHalfUp(1, 500, 1000)).to.equal(1);
      expect(mulDivRoundHalfUp(10, 950, 1000)).to.equal(10); // 9.5
    });

    it('rounds below .5 down and above .5 up', () => {
      expect(mulDivRoundHalfUp(1, 499, 1000)).to.equal(0);
      expect(mulDivRoundHalfUp(1, 501, 1000)).to.equal(1);
      expect(mulDivRoundHalfUp(1, 1, 3)).to.equal(0); // 0.333
      expect(mulDivRoundHalfUp(2, 1, 3)).to.equal(1); // 0.667
    });

    it('is exact when the division is exact', () => {
      expect(mulDivRoundHalfUp(29_900, 950, 1000)).to.equal(28_405);
      expect(mulDivRoundHalfUp(0, 950, 1000)).to.equal(0);
    });

    it('stays exact for products beyond 2^53', () => {
      // 9007199254740991 × 999 / 1000 = 8998192055486250.009 → 8998192055486250
      expect(mulDivRoundHalfUp(Number.MAX_SAFE_INTEGER, 999, 1000)).to.equal(8_998_192_055_486_250);
      expect(mulDivRoundHalfUp(Number.MAX_SAFE_INTEGER, 1, 1)).to.equal(Number.MAX_SAFE_INTEGER);
      expect(mulDivRoundHalfUp(1e15 + 1, 1000, 2000)).to.equal(5e14 + 1); // 500000000000000.5 → up
    });

    it('matches quotient + (2 × remainder ≥ divisor) for any non-negative inputs', () => {
      fc.assert(
        fc.property(fc.nat({ max: 1e12 }), fc.nat({ max: 1e6 }), fc.integer({ min: 1, max: 1e6 }), (a, n, d) => {
          const p = BigInt(a) * BigInt(n);
          const q = p / BigInt(d);
          const r = p % BigInt(d);
          const expected = Number(q + (2n * r >= BigInt(d) ? 1n : 0n));
          expect(mulDivRoundHalfUp(a, n, d)).to.equal(expected);
        }),
      );
    });
  });
});
