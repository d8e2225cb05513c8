import type { Db } from '../db/knex.js';
import { appendAudit, type AuditInput } from '../db/queries/audit-events.js';
import type { Caller } from '../domain/principal.js';

type CallerEvent = { action: string; objectType: string; objectId: string; context?: Record<string, unknown>; chain?: string };

/** The audit event of a state change made by the caller's key (to "main" unless `chain` says). */
export function auditInput(caller: Caller, event: CallerEvent): AuditInput {
  const { principal } = caller;
  return { actorType: 'api_key', actorId: principal.keyId, role: principal.role, requestId: caller.requestId, ip: caller.ip, ...event };
}

/** Appends the audit event of a state change made by the caller's key; call it last in the transaction. */
export function auditBy(trx: Db, caller: Caller, event: CallerEvent): Promise<void> {
  return appendAudit(trx, auditInput(caller, event));
}
