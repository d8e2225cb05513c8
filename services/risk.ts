import type { Db } from '../db/knex.js';
import { findAlert, resolveAlert, type RiskAlertRow } from '../db/queries/risk-alerts.js';
import { conflict, notFound } from '../domain/errors.js';
import type { Caller } from '../domain/principal.js';
import { auditBy } from './audit.js';

/** An admin resolves an open alert, once (409 after), with an optional note; by the calling key, audited. */
export async function resolveRiskAlert(db: Db, caller: Caller, id: string, note: string | null): Promise<RiskAlertRow> {
  const row = await db.transaction(async (trx) => {
    const resolved = await resolveAlert(trx, id, caller.principal.keyId, note);
    if (resolved) await auditBy(trx, caller, { action: 'risk.alert.resolve', objectType: 'risk_alert', objectId: id });
    return resolved;
  });
  if (row) return row;
  if (!(await findAlert(db, id))) throw notFound('alert');
  throw conflict('The alert is already resolved');
}
