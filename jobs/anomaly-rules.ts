import type { Deps } from '../app/deps.js';
import { formatMinor } from '../domain/money.js';
import { invalidQrKey, RISK_RULES, windowStart, type RiskRule } from '../domain/risk-rules.js';
import { cardsChargedOver, invalidQrChargesByMerchant, paymentStatsByMerchant, paymentsOver } from '../db/queries/anomalies.js';
import type { NewAlert } from '../db/queries/risk-alerts.js';

/** What a rule found: the alert to raise once per rule, subject and window. */
export interface Finding {
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

/** One rule of DESIGN.md "Risk": what it reads, and what each row read means (nothing, or a finding). */
interface AnomalyRule<Row> {
  rule: RiskRule;
  query(deps: Deps, nowMs: number): Promise<Row[]>;
  finding(row: Row, deps: Deps): Finding | null;
}

/** Declares a rule with its row type flowing from `query` to `finding`. */
const rule = <Row>(r: AnomalyRule<Row>): AnomalyRule<unknown> => r as AnomalyRule<unknown>;

const { merchant_failure_rate: failureRate, merchant_failed_charges: failedCharges, large_payment: large, card_velocity: velocity, invalid_qr: invalidQr } = RISK_RULES;

/** The rules detect-anomalies evaluates every minute, in this order. */
export const ANOMALY_RULES: readonly AnomalyRule<unknown>[] = [
  rule({
    rule: 'merchant_failure_rate',
    query: ({ db }) => paymentStatsByMerchant(db, failureRate.windowS),
    finding(m) {
      const rate = m.attempts ? m.failed / m.attempts : 0;
      if (m.attempts < failureRate.minAttempts || rate <= failureRate.maxFailureRate) return null;
      return { subjectType: 'merchant', subjectId: m.merchant_id, merchantId: m.merchant_id, severity: 'warning', details: { attempts: m.attempts, failed: m.failed, failure_rate: Number(rate.toFixed(4)) } };
    },
  }),
  rule({
    rule: 'merchant_failed_charges',
    query: ({ db }) => paymentStatsByMerchant(db, failedCharges.windowS),
    finding: (m) => (m.failed > failedCharges.maxFailed ? { subjectType: 'merchant', subjectId: m.merchant_id, merchantId: m.merchant_id, severity: 'warning', details: { failed: m.failed } } : null),
  }),
  rule({
    rule: 'large_payment',
    query: ({ db, config }) => paymentsOver(db, config.LARGE_TX_ALERT, large.windowS),
    finding: (t, { config }) => ({
      subjectType: 'transaction',
      subjectId: t.tx_no,
      merchantId: t.merchant_id,
      severity: 'info',
      windowStart: t.created_at,
      details: { card_id: t.card_id, final_amount: formatMinor(t.final_amount_minor), threshold: formatMinor(config.LARGE_TX_ALERT) },
    }),
  }),
  rule({
    rule: 'card_velocity',
    query: ({ db }) => cardsChargedOver(db, velocity.maxCharges, velocity.windowS),
    finding: (c) => ({ subjectType: 'card', subjectId: c.card_id, merchantId: null, severity: 'warning', windowStart: c.first_at, details: { charges: c.charges, window_s: velocity.windowS } }),
  }),
  rule({
    rule: 'invalid_qr',
    // The last 10 minutes: refused charges from Postgres, refused validations from the per-minute Redis counts.
    async query(deps, nowMs) {
      const invalid = new Map((await invalidQrChargesByMerchant(deps.db, invalidQr.windowS)).map((r) => [r.merchant_id, Number(r.n)]));
      try {
        const minutes = Array.from({ length: invalidQr.windowS / 60 }, (_, i) => invalidQrKey(deps.config.QUEUE_PREFIX, windowStart(nowMs - i * 60_000, 60)));
        const perMinute = await Promise.all(minutes.map((key) => deps.redis.zrange(key, 0, -1, 'WITHSCORES')));
        for (const counts of perMinute) for (let i = 0; i < counts.length; i += 2) invalid.set(counts[i]!, (invalid.get(counts[i]!) ?? 0) + Number(counts[i + 1]));
      } catch (err) {
        deps.logger.warn({ err: (err as Error).message }, 'invalid QR counts unavailable');
      }
      return [...invalid].map(([merchantId, n]) => ({ merchantId, n }));
    },
    finding: ({ merchantId, n }) => (n > invalidQr.maxInvalid ? { subjectType: 'merchant', subjectId: merchantId, merchantId, severity: 'critical', details: { invalid_attempts: n, window_s: invalidQr.windowS } } : null),
  }),
];
