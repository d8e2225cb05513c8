import type { Deps } from '../app/deps.js';
import { formatMinor } from '../domain/money.js';
import { RISK_RULES, windowStart, type RiskRule } from '../domain/risk-rules.js';
import { appendAudit } from '../db/queries/audit-events.js';
import { writeEvent } from '../db/queries/events.js';
import { raiseAlert, type NewAlert } from '../db/queries/risk-alerts.js';

/** Redis sorted set of invalid QR validations per merchant in one minute (written by /v1/qr/validate). */
export const invalidQrKey = (prefix: string, minute: Date) => `${prefix}:qr-invalid:${minute.getTime()}`;

interface Finding {
  rule: RiskRule;
  subjectType: NewAlert['subject_type'];
  subjectId: string;
  merchantId: string | null;
  severity: NewAlert['severity'];
  details: Record<string, unknown>;
  /**
   * Dedup key of the alert. Rules that look back over a sliding period key on something that
   * stays put while the same events are in view (the payment's time, the burst's first charge),
   * so one burst raises one alert; by default, the rule's fixed window of now.
   */
  windowStart?: Date;
}

/**
 * Every minute: evaluates the rules of DESIGN.md "Risk" on Postgres data (and Redis counts of
 * invalid QR validations), raises each finding once per rule, subject and window, announces it
 * as a risk.alert event, and with RISK_AUTO_BLOCK suspends the API keys of a merchant that keeps
 * presenting invalid QR codes.
 */
export async function runDetectAnomalies(deps: Deps): Promise<{ raised: number }> {
  const { db, config } = deps;
  const { rows: nowRows } = await db.raw<{ rows: { now: Date }[] }>('SELECT now() AS now');
  const now = nowRows[0]!.now.getTime();
  const findings: Finding[] = [];

  const hour = RISK_RULES.merchant_failure_rate;
  const { rows: merchantStats } = await db.raw<{ rows: { merchant_id: string; attempts: number; failed: number }[] }>(
    `SELECT merchant_id, count(*)::bigint AS attempts, count(*) FILTER (WHERE status = 'failed')::bigint AS failed
       FROM operations
      WHERE type = 'payment' AND created_at >= now() - make_interval(secs => ?) AND merchant_id IS NOT NULL
      GROUP BY merchant_id`,
    [hour.windowS],
  );
  for (const m of merchantStats) {
    const rate = m.attempts ? m.failed / m.attempts : 0;
    if (m.attempts >= hour.minAttempts && rate > hour.maxFailureRate) {
      findings.push({ rule: 'merchant_failure_rate', subjectType: 'merchant', subjectId: m.merchant_id, merchantId: m.merchant_id, severity: 'warning', details: { attempts: m.attempts, failed: m.failed, failure_rate: Number(rate.toFixed(4)) } });
    }
    if (m.failed > RISK_RULES.merchant_failed_charges.maxFailed) {
      findings.push({ rule: 'merchant_failed_charges', subjectType: 'merchant', subjectId: m.merchant_id, merchantId: m.merchant_id, severity: 'warning', details: { failed: m.failed } });
    }
  }

  const { rows: large } = await db.raw<{ rows: { tx_no: string; merchant_id: string; card_id: string; final_amount_minor: number; created_at: Date }[] }>(
    `SELECT tx_no, merchant_id, card_id, final_amount_minor, created_at FROM transactions
      WHERE type = 'payment' AND final_amount_minor > ? AND created_at >= now() - make_interval(secs => ?)`,
    [config.LARGE_TX_ALERT, RISK_RULES.large_payment.windowS],
  );
  for (const t of large) {
    findings.push({ rule: 'large_payment', subjectType: 'transaction', subjectId: t.tx_no, merchantId: t.merchant_id, severity: 'info', windowStart: t.created_at, details: { card_id: t.card_id, final_amount: formatMinor(t.final_amount_minor), threshold: formatMinor(config.LARGE_TX_ALERT) } });
  }

  const velocity = RISK_RULES.card_velocity;
  const { rows: busyCards } = await db.raw<{ rows: { card_id: string; charges: number; first_at: Date }[] }>(
    `SELECT card_id, count(*)::bigint AS charges, min(created_at) AS first_at FROM operations
      WHERE type = 'payment' AND card_id IS NOT NULL AND created_at >= now() - make_interval(secs => ?)
      GROUP BY card_id HAVING count(*) > ?`,
    [velocity.windowS, velocity.maxCharges],
  );
  for (const c of busyCards) findings.push({ rule: 'card_velocity', subjectType: 'card', subjectId: c.card_id, merchantId: null, severity: 'warning', windowStart: c.first_at, details: { charges: c.charges, window_s: velocity.windowS } });

  const qrRule = RISK_RULES.invalid_qr;
  // The last 10 minutes: refused charges from Postgres, refused validations from the per-minute Redis counts.
  const { rows: invalidCharges } = await db.raw<{ rows: { merchant_id: string; n: number }[] }>(
    `SELECT merchant_id, count(*)::bigint AS n FROM operations
      WHERE type = 'payment' AND error_code = 'QR_EXPIRED_OR_INVALID' AND created_at >= now() - make_interval(secs => ?) GROUP BY merchant_id`,
    [qrRule.windowS],
  );
  const invalid = new Map(invalidCharges.map((r) => [r.merchant_id, r.n]));
  try {
    const minutes = Array.from({ length: qrRule.windowS / 60 }, (_, i) => invalidQrKey(config.QUEUE_PREFIX, windowStart(now - i * 60_000, 60)));
    const perMinute = await Promise.all(minutes.map((key) => deps.redis.zrange(key, 0, -1, 'WITHSCORES')));
    for (const counts of perMinute) for (let i = 0; i < counts.length; i += 2) invalid.set(counts[i]!, (invalid.get(counts[i]!) ?? 0) + Number(counts[i + 1]));
  } catch (err) {
    deps.logger.warn({ err: (err as Error).message }, 'invalid QR counts unavailable');
  }
  for (const [merchantId, n] of invalid) {
    if (n > qrRule.maxInvalid) findings.push({ rule: 'invalid_qr', subjectType: 'merchant', subjectId: merchantId, merchantId, severity: 'critical', details: { invalid_attempts: n, window_s: qrRule.windowS } });
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
