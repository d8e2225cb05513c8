import type { NextFunction, Request, Response } from 'express';
import type { Logger } from '../../config/logger.js';
import { AppError } from '../../domain/errors.js';

interface BodyParserError {
  type?: string;
  status?: number;
}

/** Maps anything thrown to an AppError; what is not known becomes INTERNAL_ERROR (no stack leaks out). */
export function toAppError(err: unknown): AppError {
  if (err instanceof AppError) return err;
  const parserType = (err as BodyParserError | null)?.type;
  if (parserType === 'entity.too.large') return new AppError('PAYLOAD_TOO_LARGE', 'Request body is too large');
  if (parserType === 'entity.parse.failed') return new AppError('VALIDATION_ERROR', 'Request body is not valid JSON');
  // The router could not percent-decode a path parameter (e.g. /v1/members/%E0%A4%A).
  if (err instanceof URIError) return new AppError('VALIDATION_ERROR', 'The URL has malformed percent-encoding');
  if (parserType === 'encoding.unsupported' || parserType === 'charset.unsupported') return new AppError('UNSUPPORTED_MEDIA_TYPE', 'Unsupported body encoding');
  if (isDatabaseUnavailable(err)) return new AppError('UNAVAILABLE', 'The service is temporarily unavailable; retry with the same Idempotency-Key', undefined, true);
  return new AppError('INTERNAL_ERROR', 'Internal error');
}

function isDatabaseUnavailable(err: unknown): boolean {
  const e = err as { name?: string; code?: string; message?: string } | null;
  if (!e) return false;
  if (e.name === 'KnexTimeoutError') return true;
  if (e.code && ['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', '57P01', '57P03', '08006', '08001', '08003', '53300'].includes(e.code)) return true;
  return /Connection terminated|connect ECONNREFUSED|Client has encountered a connection error/.test(e.message ?? '');
}

export function errorHandler(logger: Logger) {
  return (err: unknown, req: Request, res: Response, _next: NextFunction) => {
    const appError = toAppError(err);
    if (appError.status >= 500) logger.error({ request_id: req.id, err: err instanceof Error ? { message: err.message, code: (err as { code?: string }).code, stack: err.stack } : err }, 'request failed');
    if (appError.status === 429 && appError.details?.retry_after_s) res.setHeader('Retry-After', String(appError.details.retry_after_s));
    res.status(appError.status).json({
      error: { code: appError.code, message: appError.message, details: appError.details ?? {}, request_id: req.id },
    });
  };
}

export function notFoundHandler(req: Request, _res: Response, next: NextFunction) {
  next(new AppError('NOT_FOUND', `No route ${req.method} ${req.path}`));
}

/** Bodies must be JSON: anything else with a body is 415 rather than silently parsed as empty. */
export function requireJsonBody(req: Request, _res: Response, next: NextFunction) {
  const hasBody = Number(req.get('content-length') ?? 0) > 0 || req.get('transfer-encoding') !== undefined;
  if (hasBody && !req.is('application/json')) return next(new AppError('UNSUPPORTED_MEDIA_TYPE', 'Send the body as application/json'));
  next();
}
