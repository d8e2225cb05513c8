import { createHmac, timingSafeEqual } from 'node:crypto';

/** v1 = hex HMAC-SHA256(secret, "<t>.<raw body>") (API.md "Webhook delivery"). */
export function signature(secret: string, timestamp: number, rawBody: string): string {
  return createHmac('sha256', secret).update(`${timestamp}.${rawBody}`).digest('hex');
}

/** `t=<unix>,v1=<hex>[,v1=<hex>]`: one v1 per valid secret, so a rotation never breaks receivers. */
export function signatureHeader(secrets: string[], timestamp: number, rawBody: string): string {
  return [`t=${timestamp}`, ...secrets.map((s) => `v1=${signature(s, timestamp, rawBody)}`)].join(',');
}

/** What a receiver does: some v1 matches and t is within the tolerance. */
export function verifySignatureHeader(header: string, secret: string, rawBody: string, nowS: number, toleranceS = 300): boolean {
  const parts = header.split(',').map((p) => p.split('=') as [string, string]);
  const t = Number(parts.find(([k]) => k === 't')?.[1]);
  if (!Number.isInteger(t) || Math.abs(nowS - t) > toleranceS) return false;
  const expected = Buffer.from(signature(secret, t, rawBody), 'hex');
  return parts.some(([k, v]) => k === 'v1' && /^[0-9a-f]{64}$/.test(v ?? '') && timingSafeEqual(Buffer.from(v!, 'hex'), expected));
}

/** Exponential backoff with ±50 % jitter: 2^attempt × base, never above the cap. */
export function retryDelayMs(attempt: number, baseMs: number, capMs: number, random = Math.random): number {
  const raw = Math.min(capMs, baseMs * 2 ** Math.min(attempt, 30));
  return Math.min(capMs, Math.round(raw * (0.5 + random())));
}
