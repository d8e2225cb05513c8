import { newestFirst, type Db, type PageRequest } from '../knex.js';
import type { TransactionRow } from '../../api/serializers.js';

export interface TransactionRecord extends TransactionRow {
  operation_id: string | null;
  via_balance: boolean;
}

const PREFIX = { payment: 'PAY', refund: 'REF', recharge: 'RCH' } as const;

/** PAY/REF/RCH + UTC date + a 10-digit sequence number: unique, sortable, and readable on a receipt. */
export const txNoExpression = (db: Db, type: keyof typeof PREFIX) =>
  db.raw(`? || to_char(now() AT TIME ZONE 'UTC', 'YYYYMMDD') || lpad(nextval('tx_no_seq')::text, 10, '0')`, [PREFIX[type]]);

export async function insertTransaction(
  trx: Db,
  tx: Omit<Partial<TransactionRecord>, 'tx_no' | 'tag'> & { type: keyof typeof PREFIX; card_id: string; tag?: Record<string, unknown> | null },
): Promise<TransactionRecord> {
  const [row] = await trx<TransactionRecord>('transactions')
    .insert({ ...tx, tag: tx.tag ? JSON.stringify(tx.tag) : null, tx_no: txNoExpression(trx, tx.type) } as never)
    .returning('*');
  return row!;
}

/** The payment a refund points at, locked, with whether the refund window (Postgres time) has passed. */
export async function lockPaymentForRefund(
  trx: Db,
  txNo: string,
  merchantId: string,
  windowDays: number,
): Promise<(TransactionRecord & { window_passed: boolean }) | undefined> {
  const { rows } = await trx.raw<{ rows: (TransactionRecord & { window_passed: boolean })[] }>(
    `SELECT *, created_at < now() - make_interval(days => ?) AS window_passed
       FROM transactions WHERE tx_no = ? AND merchant_id = ? AND type = 'payment' FOR NO KEY UPDATE`,
    [windowDays, txNo, merchantId],
  );
  return rows[0];
}

/** A transaction of this merchant by number (any type): what a refund request may point at. */
export async function findMerchantTransaction(db: Db, txNo: string, merchantId: string): Promise<Pick<TransactionRecord, 'id' | 'card_id' | 'type'> | undefined> {
  return db('transactions').select('id', 'card_id', 'type').where({ tx_no: txNo, merchant_id: merchantId }).first();
}

export async function recordRefundOnPayment(trx: Db, paymentId: string, change: { refunded: number; clawed: number; status: string }): Promise<void> {
  await trx('transactions')
    .where({ id: paymentId })
    .update({
      refunded_amount_minor: trx.raw('refunded_amount_minor + ?', [change.refunded]),
      points_clawed_back: trx.raw('points_clawed_back + ?', [change.clawed]),
      status: change.status,
    });
}

export interface TransactionFilter extends PageRequest {
  cardId?: string;
  memberId?: string;
  merchantId?: string;
  type?: string;
  status?: string;
  from?: string;
  to?: string;
}

/** Newest first, keyset-paginated. */
export async function listTransactions(db: Db, f: TransactionFilter): Promise<TransactionRecord[]> {
  const q = db('transactions as t')
    .leftJoin('member_cards as c', 'c.id', 't.card_id')
    .leftJoin('transactions as o', 'o.id', 't.original_tx_id')
    .select('t.*', 'c.card_no', 'o.tx_no as original_tx_no');
  newestFirst(db, q, 't', f);
  if (f.cardId) q.where('t.card_id', f.cardId);
  if (f.memberId) q.where('t.member_id', f.memberId);
  if (f.merchantId) q.where('t.merchant_id', f.merchantId);
  if (f.type) q.where('t.type', f.type);
  if (f.status) q.where('t.status', f.status);
  if (f.from) q.where('t.created_at', '>=', f.from);
  if (f.to) q.where('t.created_at', '<', f.to);
  return q;
}
