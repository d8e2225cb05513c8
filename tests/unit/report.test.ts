import { expect } from 'chai';
import fc from 'fast-check';
import { addDays, addFigures, datesFrom, emptyFigures, fillPeriods, netMinor, periodKey, spanDays } from '../../domain/report.js';

describe('domain/report: report periods and net', () => {
  it('steps over month, year and leap-day boundaries', () => {
    expect(addDays('2026-02-28', 1)).to.equal('2026-03-01');
    expect(addDays('2028-02-28', 1)).to.equal('2028-02-29');
    expect(addDays('2026-12-31', 1)).to.equal('2027-01-01');
    expect(addDays('2026-03-01', -1)).to.equal('2026-02-28');
    expect(addDays('2026-11-02', -29)).to.equal('2026-10-04');
  });

  it('counts days with both ends included: a leap year is 366', () => {
    expect(spanDays('2026-05-01', '2026-05-01')).to.equal(1);
    expect(spanDays('2028-01-01', '2028-12-31')).to.equal(366);
    expect(spanDays('2026-05-02', '2026-05-01')).to.equal(0);
    expect(datesFrom('2026-12-30', '2027-01-02')).to.deep.equal(['2026-12-30', '2026-12-31', '2027-01-01', '2027-01-02']);
  });

  it('addDays and spanDays agree for any date and offset', () => {
    const day = fc.date({ min: new Date('1970-01-01T00:00:00Z'), max: new Date('9000-01-01T00:00:00Z'), noInvalidDate: true }).map((d) => d.toISOString().slice(0, 10));
    fc.assert(
      fc.property(day, fc.integer({ min: 0, max: 4000 }), (d, n) => {
        expect(spanDays(d, addDays(d, n))).to.equal(n + 1);
        expect(addDays(addDays(d, n), -n)).to.equal(d);
      }),
    );
  });

  it('net is payments − refunds − recharges at the till (before the fee)', () => {
    expect(netMinor({ ...emptyFigures(), payment_minor: 18_000, refund_minor: 2_000, recharge_minor: 20_000 })).to.equal(-4_000);
    expect(netMinor(emptyFigures())).to.equal(0);
  });

  it('adds the rollup part and the live part of a period: every figure, methods and codes by key', () => {
    const rolled = { ...emptyFigures(), payment_count: 3, payment_minor: 18_000, refund_count: 1, refund_minor: 2_000, distinct_cards: 2, by_method: { cash: 5_000, balance: 13_000 }, declines: { INSUFFICIENT_BALANCE: 1 } };
    const live = { ...emptyFigures(), payment_count: 1, payment_minor: 700, recharge_count: 1, recharge_minor: 20_000, distinct_cards: 1, by_method: { cash: 700 }, declines: { INSUFFICIENT_BALANCE: 2, CARD_NOT_ACTIVE: 1 } };
    expect(addFigures(rolled, live)).to.deep.equal({
      payment_count: 4,
      payment_minor: 18_700,
      refund_count: 1,
      refund_minor: 2_000,
      recharge_count: 1,
      recharge_minor: 20_000,
      distinct_cards: 3,
      by_method: { cash: 5_700, balance: 13_000 },
      declines: { INSUFFICIENT_BALANCE: 3, CARD_NOT_ACTIVE: 1 },
    });
    expect(rolled.by_method).to.deep.equal({ cash: 5_000, balance: 13_000 });
    expect(addFigures(emptyFigures(), live)).to.deep.equal(live);
  });

  it('fills every period: found figures where there are some, zeros elsewhere', () => {
    const found = new Map([[periodKey('2026-05-02'), { ...emptyFigures(), payment_count: 2, payment_minor: 500, by_method: { cash: 500 } }]]);
    const rows = fillPeriods([{ date: '2026-05-01' }, { date: '2026-05-02' }], found);
    expect(rows.map((r) => [r.date, r.payment_count, r.net_minor])).to.deep.equal([
      ['2026-05-01', 0, 0],
      ['2026-05-02', 2, 500],
    ]);
    expect(rows[0]).to.not.have.property('hour');
    const hours = fillPeriods([{ date: '2026-05-02', hour: 0 }, { date: '2026-05-02', hour: 13 }], new Map([[periodKey('2026-05-02', 13), { ...emptyFigures(), refund_minor: 100 }]]));
    expect(hours.map((r) => [r.hour, r.net_minor])).to.deep.equal([
      [0, 0],
      [13, -100],
    ]);
  });
});
