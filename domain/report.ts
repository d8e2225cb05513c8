/**
 * Daily report figures (API.md "Directory, keys and reports") and the calendar arithmetic of their
 * periods. Days are local calendar dates in SETTLEMENT_TZ written 'YYYY-MM-DD'; the arithmetic
 * here is on dates only, so it needs no time zone: which instants a day spans is Postgres's to say.
 */

/** What one day (or one hour) of one merchant, or of the platform, adds up to; money in minor units. */
export interface ReportFigures {
  payment_count: number;
  payment_minor: number;
  refund_count: number;
  refund_minor: number;
  /** Recharges at the till: top-ups a merchant took (transactions.merchant_id set). */
  recharge_count: number;
  recharge_minor: number;
  /** Cards with at least one payment in the period; not a sum over shorter periods or merchants. */
  distinct_cards: number;
  /** Payment amounts by payment method (`balance` for stored value). */
  by_method: Record<string, number>;
  /** Failed payment operations by error code. */
  declines: Record<string, number>;
}

export interface ReportPeriod extends ReportFigures {
  date: string;
  /** Local hour 0–23, for the hourly breakdown of one day. */
  hour?: number;
  net_minor: number;
}

export const MAX_REPORT_DAYS = 366;
/** The default window: the console's 30 days, ending today. */
export const DEFAULT_REPORT_DAYS = 30;

export function emptyFigures(): ReportFigures {
  return { payment_count: 0, payment_minor: 0, refund_count: 0, refund_minor: 0, recharge_count: 0, recharge_minor: 0, distinct_cards: 0, by_method: {}, declines: {} };
}

/**
 * Two parts of one period's figures together (the rollup's and the live part after it). Every
 * figure adds up; distinct cards do because the later part counts only cards new to the period.
 */
export function addFigures(a: ReportFigures, b: ReportFigures): ReportFigures {
  const merge = (x: Record<string, number>, y: Record<string, number>) => {
    const out = { ...x };
    for (const [k, v] of Object.entries(y)) out[k] = (out[k] ?? 0) + v;
    return out;
  };
  return {
    payment_count: a.payment_count + b.payment_count,
    payment_minor: a.payment_minor + b.payment_minor,
    refund_count: a.refund_count + b.refund_count,
    refund_minor: a.refund_minor + b.refund_minor,
    recharge_count: a.recharge_count + b.recharge_count,
    recharge_minor: a.recharge_minor + b.recharge_minor,
    distinct_cards: a.distinct_cards + b.distinct_cards,
    by_method: merge(a.by_method, b.by_method),
    declines: merge(a.declines, b.declines),
  };
}

/**
 * Net of a period: payments − refunds − recharges at the till, before the platform fee. The fee
 * is a settlement's (it depends on the fee rate of the settled day and is rounded per settlement),
 * so for one merchant and day settlement.net_amount = report.net_amount − settlement.fee_amount.
 */
export function netMinor(f: ReportFigures): number {
  return f.payment_minor - f.refund_minor - f.recharge_minor;
}

const DAY = /^(\d{4})-(\d{2})-(\d{2})$/;

function toUtc(day: string): number {
  const m = DAY.exec(day);
  if (!m) throw new RangeError(`not a date: ${day}`);
  return Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]));
}

/** The calendar date `n` days after `day` (before, for negative n). */
export function addDays(day: string, n: number): string {
  return new Date(toUtc(day) + n * 86_400_000).toISOString().slice(0, 10);
}

/** Days from `from` to `to`, both included (0 when `to` is before `from`). */
export function spanDays(from: string, to: string): number {
  return Math.max(0, Math.round((toUtc(to) - toUtc(from)) / 86_400_000) + 1);
}

/** Every date from `from` to `to`, both included. */
export function datesFrom(from: string, to: string): string[] {
  return Array.from({ length: spanDays(from, to) }, (_, i) => addDays(from, i));
}

/** Earlier of two dates ('YYYY-MM-DD' sorts as text). */
export const minDay = (a: string, b: string) => (a < b ? a : b);
export const maxDay = (a: string, b: string) => (a > b ? a : b);

/**
 * One row per date (or per hour 0–23 of `date`), figures where there was activity and zeros where
 * there was none, each with its net.
 */
export function fillPeriods(keys: { date: string; hour?: number }[], found: Map<string, ReportFigures>): ReportPeriod[] {
  return keys.map((k) => {
    const figures = found.get(periodKey(k.date, k.hour)) ?? emptyFigures();
    return { date: k.date, ...(k.hour === undefined ? {} : { hour: k.hour }), ...figures, net_minor: netMinor(figures) };
  });
}

export const periodKey = (date: string, hour?: number | null) => (hour === undefined || hour === null ? date : `${date}T${hour}`);
