import type { Deps } from '../app/deps.js';

/**
 * Expires shared-card tokens older than SHARED_QR_TTL_S (a family card's QR should not live as
 * long as a personal one) and purges every token past its expiry. History rows record the end.
 */
export async function runRotateQr(deps: Deps): Promise<{ expired: number }> {
  const { rows } = await deps.db.raw<{ rows: { n: number }[] }>(
    `WITH ended AS (
       DELETE FROM card_qr_state q
        USING member_cards c
        WHERE c.id = q.card_id
          AND (q.expires_at <= now()
               OR (c.type IN ('prepaid', 'corporate') AND q.issued_at <= now() - make_interval(secs => ?)))
       RETURNING q.token_hash
     ), marked AS (
       UPDATE card_qr_history h SET end_reason = 'expired'
         FROM ended WHERE h.token_hash = ended.token_hash AND h.end_reason IS NULL
       RETURNING 1
     )
     SELECT count(*)::bigint AS n FROM ended`,
    [deps.config.SHARED_QR_TTL_S],
  );
  const expired = rows[0]!.n;
  if (expired) deps.metrics.qrEvents.inc({ event: 'expired' }, expired);
  return { expired };
}
