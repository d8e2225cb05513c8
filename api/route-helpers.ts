import type { Request } from 'express';
import type { Db } from '../db/knex.js';
import { notFound } from '../domain/errors.js';
import type { Caller } from '../domain/principal.js';
import { auditBy } from '../services/audit.js';
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

/** Appends the audit event of a state change made by the calling key; call it last in the transaction. */
export function recordAudit(trx: Db, req: Request, event: { action: string; objectType: string; objectId: string; context?: Record<string, unknown> }): Promise<void> {
  return auditBy(trx, callerOf(req), event);
}
