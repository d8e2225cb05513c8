import type { Request } from 'express';
import { notFound } from '../domain/errors.js';
import type { Caller } from '../domain/principal.js';
import { isUuid } from '../services/card-access.js';
import { principalOf } from './middleware/auth.js';

/** A path id; anything that is not a UUID cannot name a row, so it is 404 like a missing one. */
export function idParam(req: Request, name: string, what: string): string {
  const value = req.params[name];
  if (typeof value !== 'string' || !isUuid(value)) throw notFound(what);
  return value.toLowerCase();
}

/** Who is calling, with the request, as services take it. */
export const callerOf = (req: Request): Caller => ({ principal: principalOf(req), requestId: req.id, ip: req.ip ?? null });
