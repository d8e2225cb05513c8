/** The anomaly rules of DESIGN.md "Risk": thresholds and the window each is deduplicated over. */
export const RISK_RULES = {
  merchant_failure_rate: { windowS: 3600, minAttempts: 20, maxFailureRate: 0.05 },
  merchant_failed_charges: { windowS: 3600, maxFailed: 10 },
  large_payment: { windowS: 600 },
  card_velocity: { windowS: 60, maxCharges: 5 },
  invalid_qr: { windowS: 600, maxInvalid: 20 },
} as const;

export type RiskRule = keyof typeof RISK_RULES;

/** Start of the fixed window (epoch seconds) that `atMs` falls in: the dedup key of an alert. */
export function windowStart(atMs: number, windowS: number): Date {
  return new Date(Math.floor(atMs / 1000 / windowS) * windowS * 1000);
}

/** Redis sorted set of invalid QR validations per merchant in one minute (written by /v1/qr/validate, read by the invalid_qr rule). */
export const invalidQrKey = (prefix: string, minute: Date) => `${prefix}:qr-invalid:${minute.getTime()}`;
