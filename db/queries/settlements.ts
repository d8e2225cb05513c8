import { newestFirst, type Db, type PageRequest } from '../knex.js';
import { feeRateOnDaySql } from './merchant-fees.js';

export interface SettlementRow {
  id: string;
  merchant_id: string;
  period_date: string;
  period_start: Date;
  period_end: Date;
  gross_minor: number;
  refund_minor: number;
  fee_minor: number;
  net_minor: number;
  payment_count: number;
  refund_count: number;
  /** Till top-ups (POST /v1/recharges) the merchant took the money for: deducted from net. */
  recharge_minor: number;
  recharge_count: number;
  status: 'pending' | 'confirmed' | 'paid';
  created_at: Date;
  confirmed_at: Date | null;
  paid_at: Date | null;
}

/**
 * Settles one local day for every merchant with activity (or one merchant), in one statement:
 * gross = Σ payment finals, refunds = Σ refund amounts, fee = round half up(gross × the fee rate
 * in force on that day: merchant-fees.ts), recharges = Σ the merchant's till top-ups (it holds
 * that money: the card was credited), net = gross − refunds − fee − recharges (negative when the
 * till took more top-ups than sales). The unique (merchant, period) makes re-runs and concurrent runs
 * insert nothing twice; only the rows created by this call are returned.
 */
export async function generateSettlements(db: Db, day: string, timeZone: string, merchantId?: string): Promise<SettlementRow[]> {
  const { rows } = await db.raw<{ rows: SettlementRow[] }>(
    `WITH period AS (
       SELECT CAST(? AS date) AS day,
              CAST(? AS date)::timestamp AT TIME ZONE ? AS start_at,
              (CAST(? AS date) + 1)::timestamp AT TIME ZONE ? AS end_at
     ), activity AS (
       SELECT t.merchant_id,
              coalesce(sum(t.final_amount_minor) FILTER (WHERE t.type = 'payment'), 0) AS gross,
              coalesce(sum(t.final_amount_minor) FILTER (WHERE t.type = 'refund'), 0) AS refunds,
              coalesce(sum(t.final_amount_minor) FILTER (WHERE t.type = 'recharge'), 0) AS recharges,
              count(*) FILTER (WHERE t.type = 'payment') AS payments,
              count(*) FILTER (WHERE t.type = 'refund') AS refund_count,
              count(*) FILTER (WHERE t.type = 'recharge') AS recharge_count
         FROM transactions t, period p
        WHERE t.created_at >= p.start_at AND t.created_at < p.end_at
          AND t.type IN ('payment', 'refund', 'recharge') AND t.merchant_id IS NOT NULL
          AND (CAST(? AS uuid) IS NULL OR t.merchant_id = CAST(? AS uuid))
        GROUP BY t.merchant_id
     )
     INSERT INTO settlements (merchant_id, period_date, period_start, period_end, gross_minor, refund_minor, fee_minor, recharge_minor, net_minor, payment_count, refund_count, recharge_count)
     SELECT a.merchant_id, p.day, p.start_at, p.end_at, a.gross, a.refunds, f.fee, a.recharges, a.gross - a.refunds - f.fee - a.recharges, a.payments, a.refund_count, a.recharge_count
       FROM activity a
       CROSS JOIN period p
       JOIN merchants m ON m.id = a.merchant_id
       CROSS JOIN LATERAL (SELECT round(a.gross * ${feeRateOnDaySql('m.id', 'p.day')})::bigint AS fee) f
     ON CONFLICT (merchant_id, period_start) DO NOTHING
     RETURNING *`,
    [day, day, timeZone, day, timeZone, merchantId ?? null, merchantId ?? null],
  );
  return rows;
}

export interface SettlementFilter extends PageRequest {
  merchantId?: string;
  status?: string;
  from?: string;
  to?: string;
}

export async function listSettlements(db: Db, f: SettlementFilter): Promise<SettlementRow[]> {
  const q = newestFirst(db, db<SettlementRow>('settlements').select('settlements.*'), 'settlements', f);
  if (f.merchantId) q.where('merchant_id', f.merchantId);
  if (f.status) q.where('status', f.status);
  if (f.from) q.where('period_date', '>=', f.from);
  if (f.to) q.where('period_date', '<=', f.to);
  return q;
}

export async function findSettlement(db: Db, id: string): Promise<SettlementRow | undefined> {
  return db<SettlementRow>('settlements').where({ id }).first();
}

/** Moves pending → confirmed → paid; undefined when the settlement is not in `from`. */
export async function advanceSettlement(db: Db, id: string, from: 'pending' | 'confirmed'): Promise<SettlementRow | undefined> {
  const to = from === 'pending' ? { status: 'confirmed', confirmed_at: db.fn.now() } : { status: 'paid', paid_at: db.fn.now() };
  const [row] = await db<SettlementRow>('settlements')
    .where({ id, status: from })
    .update(to as never)
    .returning('*');
  return row;
}

/** Whether the local day `day` in `timeZone` is over by Postgres time. */
export async function dayHasEnded(db: Db, day: string, timeZone: string): Promise<boolean> {
  const { rows } = await db.raw<{ rows: { ended: boolean }[] }>(`SELECT (CAST(? AS date) + 1)::timestamp AT TIME ZONE ? <= now() AS ended`, [day, timeZone]);
  return rows[0]!.ended;
}

/** The local day before now (Postgres time) in `timeZone`: what a daily T+1 run settles. */
export async function previousLocalDay(db: Db, timeZone: string): Promise<string> {
  const { rows } = await db.raw<{ rows: { day: string }[] }>(`SELECT to_char((now() AT TIME ZONE ?)::date - 1, 'YYYY-MM-DD') AS day`, [timeZone]);
  return rows[0]!.day;
}
