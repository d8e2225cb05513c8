import type { Db } from '../knex.js';

/** What the anomaly rules read (jobs/anomaly-rules.ts), each over the last `windowS` seconds by the Postgres clock. */

export async function paymentStatsByMerchant(db: Db, windowS: number) {
  const { rows } = await db.raw<{ rows: { merchant_id: string; attempts: number; failed: number }[] }>(
    `SELECT merchant_id, count(*)::bigint AS attempts, count(*) FILTER (WHERE status = 'failed')::bigint AS failed
       FROM operations
      WHERE type = 'payment' AND created_at >= now() - make_interval(secs => ?) AND merchant_id IS NOT NULL
      GROUP BY merchant_id`,
    [windowS],
  );
  return rows;
}

export async function paymentsOver(db: Db, minMinor: number, windowS: number) {
  const { rows } = await db.raw<{ rows: { tx_no: string; merchant_id: string; card_id: string; final_amount_minor: number; created_at: Date }[] }>(
    `SELECT tx_no, merchant_id, card_id, final_amount_minor, created_at FROM transactions
      WHERE type = 'payment' AND final_amount_minor > ? AND created_at >= now() - make_interval(secs => ?)`,
    [minMinor, windowS],
  );
  return rows;
}

export async function cardsChargedOver(db: Db, maxCharges: number, windowS: number) {
  const { rows } = await db.raw<{ rows: { card_id: string; charges: number; first_at: Date }[] }>(
    `SELECT card_id, count(*)::bigint AS charges, min(created_at) AS first_at FROM operations
      WHERE type = 'payment' AND card_id IS NOT NULL AND created_at >= now() - make_interval(secs => ?)
      GROUP BY card_id HAVING count(*) > ?`,
    [windowS, maxCharges],
  );
  return rows;
}

export async function invalidQrChargesByMerchant(db: Db, windowS: number) {
  const { rows } = await db.raw<{ rows: { merchant_id: string; n: number }[] }>(
    `SELECT merchant_id, count(*)::bigint AS n FROM operations
      WHERE type = 'payment' AND error_code = 'QR_EXPIRED_OR_INVALID' AND created_at >= now() - make_interval(secs => ?) GROUP BY merchant_id`,
    [windowS],
  );
  return rows;
}
