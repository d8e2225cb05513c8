import { newestFirst, oneValueOf, prepared, type Db, type PageRequest, type Read, type Statement } from '../knex.js';
import type { LevelRow } from './levels.js';

export interface TransactionRow {
  id: string;
  tx_no: string;
  type: string;
  status: string;
  card_id: string;
  member_id: string | null;
  merchant_id: string | null;
  original_tx_id: string | null;
  raw_amount_minor: number;
  discount_rate: string;
  final_amount_minor: number;
  refunded_amount_minor: number;
  points_earned: number;
  points_clawed_back: number;
  payment_method: string | null;
  payment_reference?: string | null;
  external_order_id: string | null;
  tag: Record<string, unknown> | null;
  reason: string | null;
  created_at: Date;
  card_no?: string;
  original_tx_no?: string | null;
}

export interface TransactionRecord extends TransactionRow {
  operation_id: string | null;
  via_balance: boolean;
}

const PREFIX = { payment: 'PAY', refund: 'REF', recharge: 'RCH', adjustment: 'ADJ', recharge_reversal: 'RRV', payout: 'PYO', transfer_debit: 'TFD', transfer_credit: 'TFC' } as const;

/**
 * PAY/REF/RCH/ADJ/RRV/PYO/TFD/TFC + UTC date + 12 random digits + a Luhn check digit: readable on a receipt, and no
 * number tells another (1e12 a day per type: a clash is a unique violation, retried like any
 * other). As SQL, so the jobs can reserve a number inside a statement they send anyway.
 */
export const nextTxNoSql = (type: keyof typeof PREFIX) => `'${PREFIX[type]}' || mps_luhn(to_char(now() AT TIME ZONE 'UTC', 'YYYYMMDD') || mps_random_digits(12))`;

type NewTransaction = Omit<Partial<TransactionRecord>, 'tx_no' | 'tag'> & { type: keyof typeof PREFIX; card_id: string; tag?: Record<string, unknown> | null };

export async function insertTransaction(trx: Db, tx: NewTransaction): Promise<TransactionRecord> {
  const [row] = await trx<TransactionRecord>('transactions')
    .insert({ ...tx, tag: tx.tag ? JSON.stringify(tx.tag) : null, tx_no: trx.raw(nextTxNoSql(tx.type)) } as never)
    .returning('*');
  return row!;
}

/** The INSERT of a transaction whose id and number the caller chose (to run with its other writes). */
export function transactionInsert(trx: Db, tx: NewTransaction & { id: string; tx_no: string }): Statement {
  return trx('transactions')
    .insert({ ...tx, tag: tx.tag ? JSON.stringify(tx.tag) : null })
    .toSQL();
}

/** The card locked (as lockCardStatement), with the number its operation's transaction will have (reserved; a refusal leaves a gap). */
export const lockCardWithTxNo = (cardId: string, type: keyof typeof PREFIX): Statement => ({
  sql: `SELECT *, (expires_at IS NOT NULL AND expires_at <= now()) AS is_expired, ${nextTxNoSql(type)} AS tx_no FROM member_cards WHERE id = ? FOR NO KEY UPDATE`,
  bindings: [cardId],
});

/**
 * The recharge a reversal points at, locked (after its card, the order every operation of the card
 * takes): a recharge of that card with that number, or nothing.
 */
export async function lockRechargeForReversal(read: Read, txNo: string, cardId: string): Promise<TransactionRecord | undefined> {
  const [recharge] = await read<TransactionRecord>({
    sql: `SELECT * FROM transactions WHERE tx_no = ? AND card_id = ? AND type = 'recharge' FOR NO KEY UPDATE`,
    bindings: [txNo, cardId],
  });
  return recharge;
}

interface LockedPayment extends TransactionRecord {
  window_passed: boolean;
  /** The number the refund will have (reserved with the lock; a refused refund leaves a gap). */
  refund_tx_no: string;
  levels: LevelRow[];
}

/**
 * The payment a refund points at, locked, with whether the refund window (Postgres time) has
 * passed, the refund's number and the level table: all a refund reads, in one round trip.
 */
export async function lockPaymentForRefund(read: Read, txNo: string, merchantId: string, windowDays: number): Promise<LockedPayment | undefined> {
  const [payment] = await read<LockedPayment>({
    sql: `SELECT *, created_at < now() - make_interval(days => ?) AS window_passed,
                 ${nextTxNoSql('refund')} AS refund_tx_no,
                 (SELECT json_agg(l ORDER BY l.level) FROM membership_levels l) AS levels
            FROM transactions WHERE tx_no = ? AND merchant_id = ? AND type = 'payment' FOR NO KEY UPDATE`,
    bindings: [windowDays, txNo, merchantId],
  });
  return payment;
}

/** SQL for "a payout was made with method `?` and reference `?`" (one reference pays one payout). */
export const payoutReferenceUsedSql = `EXISTS (SELECT 1 FROM transactions WHERE type = 'payout' AND payment_method = ? AND payment_reference = ?)`;

/** A transaction of this merchant by number (any type): what a refund request may point at. */
export async function findMerchantTransaction(db: Db, txNo: string, merchantId: string): Promise<Pick<TransactionRecord, 'id' | 'card_id' | 'type'> | undefined> {
  return db('transactions').select('id', 'card_id', 'type').where({ tx_no: txNo, merchant_id: merchantId }).first();
}

/** What a refund leaves on its payment, or a reversal on its recharge (clawed 0): the amount taken back so far, points clawed, status. */
export function refundOnPayment(trx: Db, paymentId: string, change: { refunded: number; clawed: number; status: string }): Statement {
  return trx('transactions')
    .where({ id: paymentId })
    .update({
      refunded_amount_minor: trx.raw('refunded_amount_minor + ?', [change.refunded]),
      points_clawed_back: trx.raw('points_clawed_back + ?', [change.clawed]),
      status: change.status,
    })
    .toSQL();
}

export interface TransactionFilter extends PageRequest {
  cardId?: string;
  memberId?: string;
  merchantId?: string;
  type?: string;
  status?: string;
  from?: string;
  to?: string;
  txNo?: string;
}

function transactionsQuery(db: Db, f: TransactionFilter) {
  const q = db('transactions as t')
    .leftJoin('member_cards as c', 'c.id', 't.card_id')
    .leftJoin('transactions as o', 'o.id', 't.original_tx_id')
    .select('t.*', 'c.card_no', 'o.tx_no as original_tx_no');
  // A card's, member's or merchant's rows (or a rare status's) come from their own index; otherwise a type's from the type's.
  const narrowed = f.cardId || f.memberId || f.merchantId || f.txNo || f.status;
  if (f.type && !narrowed) oneValueOf(q, 't.type', f.type);
  newestFirst(db, q, 't', f);
  if (f.cardId) q.where('t.card_id', f.cardId);
  if (f.memberId) q.where('t.member_id', f.memberId);
  if (f.merchantId) q.where('t.merchant_id', f.merchantId);
  if (f.type && narrowed) q.where('t.type', f.type);
  if (f.status) q.where('t.status', f.status);
  if (f.from) q.where('t.created_at', '>=', f.from);
  if (f.to) q.where('t.created_at', '<', f.to);
  if (f.txNo) q.where('t.tx_no', f.txNo);
  return q;
}

/** Newest first, keyset-paginated: a card's, a member's or a merchant's own. */
export async function listTransactions(db: Db, f: TransactionFilter): Promise<TransactionRecord[]> {
  // Planned once per connection and filter combination, not on every page.
  return prepared(transactionsQuery(db, f));
}

/**
 * The same list across merchants (admin). Planned with its filter values on every call: a plan
 * made once for `status = $1` could not use the partial index of the rarer statuses, nor tell a
 * type of millions of rows from one of a few (migration index_admin_transaction_filters).
 */
export async function listAllTransactions(db: Db, f: TransactionFilter): Promise<TransactionRecord[]> {
  return transactionsQuery(db, f);
}
