import { Batcher, perOwner } from '../batcher.js';
import { prepared, runTogether, type Db, type Statement } from '../knex.js';
import { partitionSql } from '../../domain/partition.js';
import { chainHeadCtes, type ChainHead } from './audit-events.js';

export interface OperationRow {
  id: string;
  type: string;
  status: string;
  error_code: string | null;
  error_message: string | null;
  result: Record<string, unknown> | null;
  created_at: Date;
  completed_at: Date | null;
}

/**
 * `requires_approval`: accepted, waiting for a second admin key (four eyes), not enqueued;
 * `queued`/`processing`: a worker's to run; `succeeded`, `failed`, `rejected` (by the approver): terminal.
 */
export type OperationStatus = 'requires_approval' | 'queued' | 'processing' | 'succeeded' | 'failed' | 'rejected';

export interface OperationRecord {
  id: string;
  /** One of OPERATION_TYPES (operations/index.ts). */
  type: string;
  status: OperationStatus;
  principal: string;
  idempotency_key: string | null;
  request_hash: string;
  api_key_id: string;
  actor_role: string;
  merchant_id: string | null;
  member_id: string | null;
  card_id: string | null;
  partition: number;
  qr_token_hash: string | null;
  /** Minor units; null for kinds that move no requested amount (a card replacement, a card close). */
  amount_minor: number | null;
  payment_method: string | null;
  /** The payment provider's id of the money behind a recharge (app keys); unique per method. */
  payment_reference?: string | null;
  original_tx_no: string | null;
  params: OperationParams;
  /** The operation this one continues (a follow-up: operations/kind.ts), else null. */
  parent_id?: string | null;
  /** Set when the operation's apply handed the rest on to follow-ups: it stays processing until one of them ends it. */
  continued_at?: Date | null;
  error_code: string | null;
  error_message: string | null;
  result: Record<string, unknown> | null;
  attempts: number;
  request_id: string | null;
  ip: string | null;
  created_at: Date;
  started_at: Date | null;
  completed_at: Date | null;
}

/** What a kind keeps of its request beyond the columns (and what a follow-up carries from the leg before). */
export interface OperationParams {
  external_order_id?: string;
  tag?: Record<string, unknown>;
  reason?: string;
  [field: string]: unknown;
}

export type NewOperation = Omit<OperationRecord, 'status' | 'error_code' | 'error_message' | 'result' | 'attempts' | 'created_at' | 'started_at' | 'completed_at' | 'continued_at'> & {
  /** Unset: queued. */
  status?: 'requires_approval';
};

export const isTerminal = (status: OperationStatus) => status === 'succeeded' || status === 'failed' || status === 'rejected';

/** A worker's to run: never one waiting for approval, never a finished one. */
export const isRunnable = (status: OperationStatus) => status === 'queued' || status === 'processing';

/**
 * Where a wait (`Prefer: wait=N`) ends: a terminal status, or one that only a person moves on
 * (requires_approval), which no wait of seconds would see change.
 */
export const isAtRest = (status: OperationStatus) => isTerminal(status) || status === 'requires_approval';

export async function findOperation(db: Db, id: string): Promise<OperationRecord | undefined> {
  return prepared(db<OperationRecord>('operations').where({ id }).first());
}

export async function findByIdempotencyKey(db: Db, principal: string, key: string): Promise<OperationRecord | undefined> {
  return db<OperationRecord>('operations').where({ principal, idempotency_key: key }).first();
}

/** Where an accepted operation's card comes from when the client named it by QR: the card of the QR with that hash. */
export interface CardOfQr {
  hash: string;
  partitions: number;
}

/**
 * Inserts unless the (principal, key) pair exists; returns undefined when a concurrent request won.
 * With `cardOfQr`, the card and member are those of the QR with that hash, found in the same
 * statement (null when there is none), and the partition is the card's (the operation's own id's
 * when there is none). Outside a transaction, concurrent calls of the process share one statement
 * and one commit (group commit: insertOperations).
 */
export function insertOperation(db: Db, op: NewOperation, cardOfQr?: CardOfQr): Promise<OperationRecord | undefined> {
  return db.isTransaction ? insertOne(db, { op, cardOfQr }) : acceptances(db).submit({ op, cardOfQr });
}

interface Acceptance {
  op: NewOperation;
  cardOfQr?: CardOfQr;
}

// Up to 64 rows a statement, two statements at a time per pool: one lets a batch gather while the
// other is in Postgres, and the pool keeps connections for every other query.
const acceptances = perOwner((db: Db) => new Batcher<Acceptance, OperationRecord | undefined>({ many: (rows) => insertOperations(db, rows), one: (row) => insertOne(db, row) }, 64, 2));

async function insertOne(db: Db, { op, cardOfQr }: Acceptance): Promise<OperationRecord | undefined> {
  const row = { ...op, params: JSON.stringify(op.params) };
  const fromQr = cardOfQr && {
    card_id: db.raw('(SELECT card_id FROM qr)'),
    member_id: db.raw('(SELECT member_id FROM qr)'),
    partition: db.raw(partitionSql('coalesce((SELECT card_id FROM qr)::text, ?)'), [op.id, cardOfQr.partitions]),
  };
  const insert = db('operations').insert({ ...row, ...fromQr }).toSQL();
  const { rows } = await prepared(db.raw<{ rows: OperationRecord[] }>(
    `${cardOfQr ? 'WITH qr AS (SELECT card_id, member_id FROM card_qr_state WHERE token_hash = ?) ' : ''}${insert.sql}
       ON CONFLICT (principal, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING RETURNING *`,
    [...(cardOfQr ? [cardOfQr.hash] : []), ...insert.bindings],
  ));
  return rows[0];
}

/**
 * insertOne for many rows in one statement: the rows travel as one JSON array (so the text, and
 * its prepared plan, depend only on which columns the rows name), a row whose card comes from its
 * QR takes that QR's card, member and partition, and each row's answer is its inserted record, or
 * undefined when its (principal, key) pair existed. The same key twice in one batch inserts once.
 */
export async function insertOperations(db: Db, rows: Acceptance[]): Promise<(OperationRecord | undefined)[]> {
  const columns = [...new Set(rows.flatMap(({ op }) => Object.keys(op).filter((c) => op[c as keyof NewOperation] !== undefined)))].sort();
  // Only rows of a QR use the partition count (theirs is the card's); the text binds it once whatever the rows.
  const partitions = rows.find((r) => r.cardOfQr)?.cardOfQr?.partitions ?? 1;
  const pick = (column: string) => {
    if (column === 'status') return `coalesce(i.status, 'queued')`;
    if (column === 'card_id' || column === 'member_id') return `CASE WHEN i.of_qr THEN q.${column} ELSE i.${column} END`;
    if (column === 'partition') return `CASE WHEN i.of_qr THEN ${partitionSql('coalesce(q.card_id::text, i.id)')} ELSE i.partition END`;
    return `i.${column}`;
  };
  const selected = [...new Set([...columns, 'card_id', 'member_id', 'partition'])].sort();
  const json = rows.map(({ op, cardOfQr }) => ({ ...op, ...(cardOfQr ? { qr_token_hash: cardOfQr.hash, of_qr: true } : {}) }));
  const { rows: inserted } = await prepared(db.raw<{ rows: OperationRecord[] }>(
    `WITH i AS (
       SELECT r.*, coalesce((e.j ->> 'of_qr')::boolean, false) AS of_qr, e.n
         FROM jsonb_array_elements(?::jsonb) WITH ORDINALITY AS e(j, n), LATERAL jsonb_populate_record(NULL::operations, e.j) AS r)
     INSERT INTO operations (${selected.join(', ')})
     SELECT ${selected.map(pick).join(', ')}
       FROM i LEFT JOIN card_qr_state q ON i.of_qr AND q.token_hash = i.qr_token_hash
      ORDER BY i.n
     ON CONFLICT (principal, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING RETURNING *`,
    [JSON.stringify(json), partitions],
  ));
  const byId = new Map(inserted.map((op) => [op.id, op]));
  return rows.map(({ op }) => byId.get(op.id));
}

/**
 * Counts an attempt of the operation's job that failed before applying it (its transaction rolled
 * back, so the batch that applies it counts only itself): what `attempts` shows an on-call reader.
 */
export async function countFailedAttempt(db: Db, id: string): Promise<void> {
  await prepared(db.raw(`UPDATE operations SET attempts = attempts + 1 WHERE id = ? AND status IN ('queued', 'processing')`, [id]));
}

export async function lockOperation(trx: Db, id: string): Promise<OperationRecord | undefined> {
  return prepared(trx<OperationRecord>('operations').where({ id }).forNoKeyUpdate().first());
}

/** lockOperation as a statement, for a kind's `read` (the operation a follow-up ends). */
export const lockOperationStatement = (id: string): Statement => ({ sql: 'SELECT * FROM operations WHERE id = ? FOR NO KEY UPDATE', bindings: [id] });

/** A follow-up's row (operations/kind.ts FollowUp), queued on its card's partition, to insert with the writes of the operation that hands on to it. */
export function followUpInsert(trx: Db, op: NewOperation): Statement {
  return trx('operations')
    .insert({ ...op, params: JSON.stringify(op.params) })
    .toSQL();
}

/**
 * SQL for "an operation that took money off card `?` is still continuing elsewhere" (a transfer
 * whose credit has not ended): what closing or replacing the card must wait for. Binds the card id.
 */
export const moneyInFlightSql = `EXISTS (SELECT 1 FROM operations WHERE card_id = ? AND status = 'processing' AND continued_at IS NOT NULL)`;

/**
 * Locks an operation and up to `peers` other queued operations of its partition (oldest first,
 * skipping any another transaction holds), in the order they were accepted: one transaction then
 * applies them all. Terminal rows come back too; the caller skips them. In the same round trip
 * it takes the turn of the partition's audit chain `<chainPrefix><partition>` (its head locked
 * after the operation, ids for every row locked; unused ids are gaps, as other chains' are): no
 * head yet (the chain's first batch), no turn.
 */
export async function lockBatch(trx: Db, id: string, peers: number, chainPrefix: string): Promise<{ ops: OperationRecord[]; now: Date; head?: ChainHead }> {
  const { rows } = await prepared(trx.raw<{ rows: (OperationRecord & { batch_now: Date; turn: ChainHead | null })[] }>(
    `WITH own AS (SELECT * FROM operations WHERE id = :id FOR NO KEY UPDATE),
          peers AS (SELECT * FROM operations WHERE partition = (SELECT partition FROM own) AND status = 'queued' AND id <> :id
                     ORDER BY created_at LIMIT :peers FOR NO KEY UPDATE SKIP LOCKED),
          ${chainHeadCtes(`:chain || (SELECT partition FROM own)`, '(SELECT count(*) FROM own) + (SELECT count(*) FROM peers)')}
     SELECT b.*, now() AS batch_now, (SELECT to_json(turn) FROM turn) AS turn FROM (SELECT * FROM own UNION ALL SELECT * FROM peers) b ORDER BY created_at, id`,
    { id, peers, chain: chainPrefix },
  ));
  // now() is the transaction's: the completed_at of every operation it ends.
  const turn = rows[0]?.turn;
  return {
    ops: rows.map(({ batch_now: _, turn: __, ...op }) => op),
    now: rows[0]?.batch_now ?? new Date(),
    head: turn ? { ...turn, now: new Date(turn.now) } : undefined,
  };
}

/** Moves an operation waiting for approval to queued (its caller then enqueues it); undefined when it was not waiting. */
export async function approvedOperation(trx: Db, id: string): Promise<OperationRecord | undefined> {
  const [row] = await trx<OperationRecord>('operations').where({ id, status: 'requires_approval' }).update({ status: 'queued' }).returning('*');
  return row;
}

/** Ends an operation waiting for approval as rejected (APPROVAL_REJECTED); undefined when it was not waiting. */
export async function rejectedOperation(trx: Db, id: string, message: string): Promise<OperationRecord | undefined> {
  const [row] = await trx<OperationRecord>('operations')
    .where({ id, status: 'requires_approval' })
    .update({ status: 'rejected', error_code: 'APPROVAL_REJECTED', error_message: message, completed_at: trx.fn.now() } as never)
    .returning('*');
  return row;
}

/** How an applied operation ends: succeeded, failed, or continued (left processing for a follow-up to end). */
export type Outcome = { status: 'succeeded'; result: Record<string, unknown> } | { status: 'failed'; code: string; message: string } | { status: 'continued' };

/** The outcome that ends an operation (a continued one is not ended). */
export type Ending = Exclude<Outcome, { status: 'continued' }>;

/** The statement that writes an operation's one terminal outcome (the caller holds its row lock). */
export function outcomeUpdate(trx: Db, id: string, outcome: Outcome, applied = false) {
  // Started and applied in one transaction: no commit of its own marks an operation in hand (the
  // batch holds its row lock; the reconciler asks Redis whether its job is still there).
  const started = { started_at: trx.raw('coalesce(started_at, now())'), ...(applied ? { attempts: trx.raw('attempts + 1') } : {}) };
  const ended = { ...started, completed_at: trx.fn.now() };
  return trx<OperationRecord>('operations')
    .where({ id })
    .update(
      (outcome.status === 'succeeded'
        ? { status: 'succeeded', result: JSON.stringify(outcome.result), ...ended }
        : outcome.status === 'failed'
          ? { status: 'failed', error_code: outcome.code, error_message: outcome.message, ...ended }
          : { status: 'processing', continued_at: trx.fn.now(), ...started }) as never,
    );
}

/** Writes the terminal outcome and, in the same round trip, the writes that come with it (its outbox event, audit event, money rows). */
export async function finishOperation(trx: Db, id: string, outcome: Ending, writes: readonly Statement[] = []): Promise<OperationRecord> {
  const [row] = await runTogether<OperationRecord>(trx, outcomeUpdate(trx, id, outcome).returning('*').toSQL(), writes);
  return row!;
}

/**
 * Open operations older than `ageSeconds` (by Postgres time), oldest first: the reconciler's work
 * list. A continued operation has no job left to run (its follow-ups are on the list themselves).
 */
export async function listStaleOpen(db: Db, ageSeconds: number, limit: number): Promise<Pick<OperationRecord, 'id' | 'type' | 'partition' | 'status'>[]> {
  return db('operations')
    .select('id', 'type', 'partition', 'status')
    .whereIn('status', ['queued', 'processing'])
    .whereNull('continued_at')
    .andWhere('created_at', '<', db.raw(`now() - make_interval(secs => ?)`, [ageSeconds]))
    .orderBy('created_at')
    .limit(limit);
}

/**
 * Seconds since the oldest queued or processing operation was accepted (0 when none), by the
 * Postgres clock: one probe of the partial index operations_open_by_age.
 */
export async function oldestOpenAgeSeconds(db: Db): Promise<number> {
  const { rows } = await db.raw<{ rows: { age: number | string }[] }>(
    `SELECT coalesce(extract(epoch FROM now() - min(created_at)), 0)::float8 AS age FROM operations WHERE status IN ('queued', 'processing')`,
  );
  return Number(rows[0]!.age);
}
