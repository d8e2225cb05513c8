import express, { type NextFunction, type Request, type Response } from 'express';
import { isLosslessNumber, parse as parseLossless } from 'lossless-json';
import { AppError } from '../../domain/errors.js';

/**
 * Fields whose JSON numbers are kept as the client wrote them: an amount is judged on its own
 * characters (no exponent, at most 2 decimals), which JSON.parse would already have rounded away
 * (`1e2` → 100, `1.999999999999999999` → 2).
 */
export const AMOUNT_FIELDS: ReadonlySet<string> = new Set(['amount', 'face_value', 'single_payment_limit', 'daily_spend_limit']);

/** Numbers under an amount field become their source text; every other number is what JSON.parse makes of it. */
function revive(key: string, value: unknown): unknown {
  if (!isLosslessNumber(value)) return value;
  return AMOUNT_FIELDS.has(key) ? value.value : Number(value.value);
}

/**
 * `application/json` bodies of at most `limit`, as objects or arrays (like express.json's strict
 * mode), parsed without losing the text of amounts.
 */
export function jsonBody(limit: string) {
  const readText = express.text({ type: 'application/json', limit });
  return (req: Request, res: Response, next: NextFunction) => {
    readText(req, res, (err?: unknown) => {
      if (err) return next(err);
      if (typeof req.body !== 'string') {
        req.body = undefined;
        return next();
      }
      const text = req.body.trim();
      if (text === '') {
        req.body = undefined;
        return next();
      }
      try {
        if (text[0] !== '{' && text[0] !== '[') throw new SyntaxError('not an object or array');
        req.body = parseLossless(text, revive);
      } catch {
        return next(new AppError('VALIDATION_ERROR', 'Request body is not valid JSON'));
      }
      next();
    });
  };
}
