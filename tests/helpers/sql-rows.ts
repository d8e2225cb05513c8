import { randomBytes, randomUUID } from 'node:crypto';
import type { Db } from '../../db/knex.js';

/**
 * Direct SQL rows for tests of the background jobs (settlement, anomaly detection, cleanup): a
 * fixed data set with chosen timestamps is built in milliseconds, where driving each row through
 * the API and the queues would take seconds and could not place rows in the past.
 */

export const hex = (bytes: number) => randomBytes(bytes).toString('hex');
export const newOperationId = () => `op_${hex(16)}`;
export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export interface SqlOperation {
  type?: 'payment' | 'refund' | 'recharge';
  status?: 'queued' | 'processing' | 'succeeded' | 'failed';
  merchantId?: string | null;
  memberId?: string | null;
  cardId?: string | null;
  amountMinor?: number;
  errorCode?: string;
  idempotencyKey?: string | null;
  /** A timestamp, or SQL such as `now() - interval '1 hour'` via `createdAtSql`. */
  createdAt?: Date | string;
  createdAtSql?: string;
}

/**
 * One operations row; terminal ones get completed_at and failed ones an error code (the CHECKs ask
 * for both). A queued one is on partition 0: deleteQueued it once checked.
 */
export async function insertOperation(db: Db, op: SqlOperation = {}): Promise<string> {
  const id = newOperationId();
  const status = op.status ?? 'succeeded';
  const createdAt = op.createdAtSql ? db.raw(op.createdAtSql) : op.createdAt !== undefined ? new Date(op.createdAt) : db.fn.now();
  const terminal = status === 'succeeded' || status === 'failed';
  await db('operations').insert({
    id,
    type: op.type ?? 'payment',
    status,
    principal: op.merchantId ? `merchant:${op.merchantId}` : `key:${randomUUID()}`,
    idempotency_key: op.idempotencyKey === undefined ? null : op.idempotencyKey,
    request_hash: hex(32),
    api_key_id: randomUUID(),
    actor_role: op.merchantId ? 'merchant' : 'admin',
    merchant_id: op.merchantId ?? null,
    member_id: op.memberId ?? null,
    card_id: op.cardId ?? null,
    partition: 0,
    amount_minor: op.amountMinor ?? 1000,
    error_code: status === 'failed' ? (op.errorCode ?? 'INSUFFICIENT_BALANCE') : null,
    error_message: status === 'failed' ? 'test' : null,
    created_at: createdAt,
    completed_at: terminal ? createdAt : null,
  });
  return id;
}

/**
 * Deletes those of `ids` still queued. Tests share one database and a batch takes every queued
 * operation of its partition, so a row a test leaves queued would ride along in another file's batch.
 */
export async function deleteQueued(db: Db, ids: readonly string[]): Promise<void> {
  await db('operations').whereIn('id', ids).where({ status: 'queued' }).delete();
}

/** Many operations in one INSERT … SELECT generate_series: for the anomaly thresholds. */
export async function insertOperations(
  db: Db,
  n: number,
  op: { merchantId?: string | null; cardId?: string | null; memberId?: string | null; status: 'succeeded' | 'failed'; errorCode?: string; ageSeconds?: number },
): Promise<void> {
  if (n <= 0) return;
  await db.raw(
    `INSERT INTO operations (id, type, status, principal, request_hash, api_key_id, actor_role, merchant_id, member_id, card_id, partition, amount_minor, error_code, error_message, created_at, completed_at)
     SELECT 'op_' || md5(random()::text || g::text), 'payment', ?, coalesce('merchant:' || ?::text, 'key:x'), md5(g::text), gen_random_uuid(), 'merchant',
            ?::uuid, ?::uuid, ?::uuid, 0, 1000, ?, ?, now() - make_interval(secs => ?), now() - make_interval(secs => ?)
       FROM generate_series(1, ?) g`,
    [
      op.status,
      op.merchantId ?? null,
      op.merchantId ?? null,
      op.memberId ?? null,
      op.cardId ?? null,
      op.status === 'failed' ? (op.errorCode ?? 'INSUFFICIENT_BALANCE') : null,
      op.status === 'failed' ? 'test' : null,
      op.ageSeconds ?? 1,
      op.ageSeconds ?? 1,
      n,
    ],
  );
}

export interface SqlTransaction {
  type: 'payment' | 'refund' | 'recharge';
  merchantId: string | null;
  cardId: string;
  memberId?: string | null;
  finalMinor: number;
  rawMinor?: number;
  discountRate?: string;
  originalTxId?: string;
  createdAt: Date | string;
}

/**
 * One transaction with its (succeeded) operation, at a chosen time. A refund also raises its
 * payment's refunded_amount_minor, as the refund job does, so the CHECK constraints hold.
 */
export async function insertTransaction(db: Db, tx: SqlTransaction): Promise<{ id: string; txNo: string; operationId: string }> {
  const at = new Date(tx.createdAt);
  const operationId = await insertOperation(db, { type: tx.type, merchantId: tx.merchantId, cardId: tx.cardId, memberId: tx.memberId ?? null, amountMinor: tx.rawMinor ?? tx.finalMinor, createdAt: at });
  const txNo = `${tx.type === 'payment' ? 'PAY' : tx.type === 'refund' ? 'REF' : 'RCH'}T${hex(8)}`;
  const [row] = await db('transactions')
    .insert({
      tx_no: txNo,
      type: tx.type,
      operation_id: operationId,
      card_id: tx.cardId,
      member_id: tx.memberId ?? null,
      merchant_id: tx.merchantId,
      original_tx_id: tx.originalTxId ?? null,
      raw_amount_minor: tx.rawMinor ?? tx.finalMinor,
      discount_rate: tx.discountRate ?? '1.000',
      final_amount_minor: tx.finalMinor,
      payment_method: tx.type === 'payment' || tx.type === 'recharge' ? 'cash' : null,
      created_at: at,
    })
    .returning(['id']);
  if (tx.type === 'refund') {
    await db('transactions').where({ id: tx.originalTxId }).increment('refunded_amount_minor', tx.finalMinor);
  }
  return { id: (row as { id: string }).id, txNo, operationId };
}

/** The text of one sample of a Prometheus metric (with exactly these labels), or 0 when absent. */
export function metricValue(metricsText: string, name: string, labels: Record<string, string> = {}): number {
  const want = Object.entries(labels)
    .map(([k, v]) => `${k}="${v}"`)
    .sort()
    .join(',');
  for (const line of metricsText.split('\n')) {
    if (!line.startsWith(name)) continue;
    const m = /^([a-zA-Z_:][\w:]*)(?:\{([^}]*)\})?\s+(\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const got = (m[2] ?? '').split(',').filter(Boolean).sort().join(',');
    if (got === want) return Number(m[3]);
  }
  return 0;
}

/**
 * Waits until at least `marginMs` remain in the current fixed window of `windowS` seconds, so that
 * a test that runs detection twice and expects one alert does not straddle two dedup windows.
 */
export async function clearOfWindowEdge(windowS: number, marginMs = 5000): Promise<void> {
  const size = windowS * 1000;
  const left = size - (Date.now() % size);
  if (left < marginMs) await sleep(left + 100);
}
