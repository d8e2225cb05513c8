import { AppError } from './errors.js';

const AMOUNT_TEXT = /^(0|[1-9]\d{0,14})(\.\d{1,2})?$/;

/**
 * Turns an API amount (`299`, `"299.00"`, `12.5`) into integer minor units. Anything that is not
 * a plain positive decimal with at most two places and at most `maxMinor` is AMOUNT_INVALID:
 * exponent forms, NaN, negatives, zero and binary-float noise such as 0.1 + 0.2.
 */
export function parseAmount(input: unknown, maxMinor: number, field = 'amount'): number {
  const text = typeof input === 'number' ? (Number.isFinite(input) ? String(input) : '') : typeof input === 'string' ? input : '';
  const match = AMOUNT_TEXT.exec(text);
  if (!match) throw new AppError('AMOUNT_INVALID', `${field} must be a positive amount with at most 2 decimals`, { field });
  const [units, fraction = ''] = text.split('.');
  const minor = Number(units) * 100 + Number(fraction.padEnd(2, '0'));
  if (minor <= 0 || minor > maxMinor) {
    throw new AppError('AMOUNT_INVALID', `${field} must be more than 0 and at most ${formatMinor(maxMinor)}`, { field });
  }
  return minor;
}

/**
 * A signed API amount (`"-25.00"`, `-25`, `"25.00"`) in minor units: a leading minus, then the
 * same text rule as parseAmount. Zero is AMOUNT_INVALID (an adjustment of nothing is a mistake),
 * and so is more than `maxMinor` either way.
 */
export function parseSignedAmount(input: unknown, maxMinor: number, field = 'amount'): number {
  const text = typeof input === 'number' ? (Number.isFinite(input) ? String(input) : '') : typeof input === 'string' ? input : '';
  const negative = text.startsWith('-');
  try {
    const minor = parseAmount(negative ? text.slice(1) : text, maxMinor, field);
    return negative ? -minor : minor;
  } catch (err) {
    if (!(err instanceof AppError)) throw err;
    throw new AppError('AMOUNT_INVALID', `${field} must be a signed amount such as "-25.00" or "25.00": not 0, at most 2 decimals, at most ${formatMinor(maxMinor)} either way`, { field });
  }
}

/** Minor units to the API's string form with exactly two decimals: 28405 → "284.05". */
export function formatMinor(minor: number): string {
  if (!Number.isSafeInteger(minor)) throw new RangeError(`not a minor-unit amount: ${minor}`);
  const sign = minor < 0 ? '-' : '';
  const abs = Math.abs(minor);
  return `${sign}${Math.trunc(abs / 100)}.${String(abs % 100).padStart(2, '0')}`;
}

/** Rates are held as integer thousandths (0.950 → 950) so that discount math stays exact. */
export function parseRate(text: string | number): number {
  // Number('') and Number(' ') are 0: a missing rate must not become a 100 % discount.
  const value = typeof text === 'string' && text.trim() === '' ? Number.NaN : Math.round(Number(text) * 1000);
  if (!Number.isInteger(value) || value < 0 || value > 1000) throw new RangeError(`not a rate: ${text}`);
  return value;
}

/** Thousandths to the API's rate string: 950 → "0.950". */
export function formatRate(milli: number): string {
  return (milli / 1000).toFixed(3);
}

/** Round half up of `amount × numerator / denominator`, all non-negative integers. */
export function mulDivRoundHalfUp(amount: number, numerator: number, denominator: number): number {
  const product = BigInt(amount) * BigInt(numerator);
  const d = BigInt(denominator);
  return Number((product * 2n + d) / (2n * d));
}
