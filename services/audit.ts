import type { Db } from '../db/knex.js';
import { appendAudit } from '../db/queries/audit-events.js';
import type { Caller } from '../domain/principal.js';

/** Appends the audit event of a state change made by the caller's key (to "main" unless `chain` says); call it last in the transaction. */
export function auditBy(trx: Db, caller: Caller, event: { action: string; objectType: string; objectId: string; context?: Record<string, unknown>; chain?: string }): Promise<void> {
  const { principal } = caller;
  return appendAudit(trx, { actorType: 'api_key', actorId: principal.keyId, role: principal.role, requestId: caller.requestId, ip: caller.ip, ...event });
}
