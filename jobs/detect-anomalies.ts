import type { Deps } from '../app/deps.js';
import { RISK_RULES, windowStart, type RiskRule } from '../domain/risk-rules.js';
import { appendAudit } from '../db/queries/audit-events.js';
import { writeEvent } from '../db/queries/events.js';
import { raiseAlert } from '../db/queries/risk-alerts.js';
import { ANOMALY_RULES, type Finding } from './anomaly-rules.js';

/**
 * Every minute: evaluates the rules of DESIGN.md "Risk" (ANOMALY_RULES, in jobs/anomaly-rules.ts),
 * raises each finding once per rule, subject and window, announces it as a risk.alert event, and
 * with RISK_AUTO_BLOCK suspends the API keys of a merchant that keeps presenting invalid QR codes.
 */
export async function runDetectAnomalies(deps: Deps): Promise<{ raised: number }> {
  const { db, config } = deps;
  const { rows: nowRows } = await db.raw<{ rows: { now: Date }[] }>('SELECT now() AS now');
  const now = nowRows[0]!.now.getTime();
  const findings: (Finding & { rule: RiskRule })[] = [];
  for (const r of ANOMALY_RULES) {
    for (const row of await r.query(deps, now)) {
      const found = r.finding(row, deps);
      if (found) findings.push({ rule: r.rule, ...found });
    }
  }

  let raised = 0;
  for (const f of findings) {
    const created = await db.transaction(async (trx) => {
      const alert = await raiseAlert(trx, { rule: f.rule, subject_type: f.subjectType, subject_id: f.subjectId, window_start: f.windowStart ?? windowStart(now, RISK_RULES[f.rule].windowS), severity: f.severity, details: f.details });
      if (!alert) return false;
      // Platform-level event (no merchant): a merchant's feed must not show alerts about it.
      await writeEvent(trx, null, 'risk.alert', { alert_id: alert.id, merchant_id: f.merchantId, rule: f.rule, subject_type: f.subjectType, subject_id: f.subjectId, severity: f.severity, details: f.details });
      const blocked = f.rule === 'invalid_qr' && config.RISK_AUTO_BLOCK ? await trx('api_keys').where({ merchant_id: f.subjectId, status: 'active' }).update({ status: 'suspended' }) : 0;
      await appendAudit(trx, { actorType: 'system', actorId: 'anomaly-detector', action: 'risk.alert', objectType: f.subjectType, objectId: f.subjectId, context: { rule: f.rule, alert_id: alert.id, keys_suspended: blocked } });
      return true;
    });
    if (created) {
      raised++;
      deps.metrics.riskAlerts.inc({ rule: f.rule });
    }
  }
  return { raised };
}
