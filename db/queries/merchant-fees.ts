import type { Db } from '../knex.js';
import type { MerchantRow } from './merchants.js';

/**
 * The fee rate of merchant `merchantId` on settlement day `day` (both SQL expressions): the dated
 * rate in force that day, or the merchant's own rate when it has never been changed (see the
 * migration create_merchant_fee_rates).
 */
export const feeRateOnDaySql = (merchantId: string, day: string) =>
  `coalesce((SELECT r.fee_rate FROM merchant_fee_rates r WHERE r.merchant_id = ${merchantId} AND r.effective_from <= ${day} ORDER BY r.effective_from DESC LIMIT 1), (SELECT m0.fee_rate FROM merchants m0 WHERE m0.id = ${merchantId}))`;

/**
 * Sets `feeRate` (text, 4 decimals) as the merchant's rate from the next settlement day in
 * `timeZone`, by Postgres time: today's payments keep the rate they were taken under. The first
 * change also records the rate it replaces, from -infinity. Two changes on one day: the later
 * one wins. Call with the merchant row locked. Returns the merchant as it now reads.
 */
export async function setNextFeeRate(trx: Db, merchantId: string, feeRate: string, timeZone: string): Promise<MerchantRow> {
  await trx.raw(
    `INSERT INTO merchant_fee_rates (merchant_id, effective_from, fee_rate)
     SELECT id, '-infinity', fee_rate FROM merchants WHERE id = ?
     ON CONFLICT (merchant_id, effective_from) DO NOTHING`,
    [merchantId],
  );
  const { rows } = await trx.raw<{ rows: MerchantRow[] }>(
    `WITH today AS (SELECT (now() AT TIME ZONE ?)::date AS d),
          dated AS (
            INSERT INTO merchant_fee_rates (merchant_id, effective_from, fee_rate)
            SELECT ?, d + 1, ? FROM today
            ON CONFLICT (merchant_id, effective_from) DO UPDATE SET fee_rate = EXCLUDED.fee_rate, created_at = now()
          )
     UPDATE merchants m
        SET previous_fee_rate = ${feeRateOnDaySql('m.id', 't.d')}, fee_rate = ?, fee_rate_from = t.d + 1, updated_at = now()
       FROM today t
      WHERE m.id = ?
     RETURNING m.*`,
    [timeZone, merchantId, feeRate, feeRate, merchantId],
  );
  return rows[0]!;
}

export async function renameMerchant(trx: Db, merchantId: string, name: string): Promise<MerchantRow> {
  const [row] = await trx<MerchantRow>('merchants').where({ id: merchantId }).update({ name, updated_at: trx.fn.now() } as never).returning('*');
  return row!;
}
