import type { Knex } from 'knex';
import type { Deps } from '../config/deps.js';
import { AppError } from '../domain/errors.js';
import { formatMinor } from '../domain/money.js';
import { auditAppend, takeChainTurn, type ChainTurn } from '../db/queries/audit-events.js';
import { eventInsert, type EventType } from '../db/queries/events.js';
import type { Statement } from '../db/knex.js';
import { finishOperation, isTerminal, lockBatch, lockOperation, markProcessing, type OperationRecord } from '../db/queries/operations.js';
import type { OperationType } from './names.js';
import { announcement, operationDoneChannel } from '../api/operation-waiter.js';
import { crashPoint } from './crash-points.js';

/** What a successful operation writes (sent in one round trip), answers, and tells the outbox and the audit trail. */
export interface Applied {
  writes: Statement[];
  result: Record<string, unknown>;
  event: { merchantId: string | null; type: EventType; data: Record<string, unknown> };
  audit: { action: string; objectType: string; objectId: string; context: Record<string, unknown> };
}

/**
 * Applies the business rules of one operation to the rows it locks, and returns the writes that
 * follow, unsent. Throws a non-retryable AppError for a business refusal (the operation then
 * fails with that code); any other error is infrastructure trouble and the job is retried.
 */
export type ApplyOperation = (trx: Knex.Transaction, op: OperationRecord, deps: Deps) => Promise<Applied>;

/** How each kind of operation is applied (jobs/index.ts). */
export type Appliers = Record<OperationType, ApplyOperation>;

/**
 * Runs an operation effectively once, together with the other operations queued on its partition
 * (up to OPERATION_BATCH_MAX in all, oldest first): one transaction, one commit for the batch.
 * Every operation row is re-read under lock in that transaction, so a job that runs twice
 * (stalled, re-enqueued by the reconciler) finds its operation terminal and changes nothing, and
 * the jobs of operations taken along are removed once they are done.
 */
export async function runOperation(deps: Deps, operationId: string, appliers: Appliers): Promise<unknown> {
  const started = await markProcessing(deps.db, operationId);
  if (!started) return { skipped: 'already terminal' };
  let finished: OperationRecord[];
  try {
    finished = await applyBatch(deps, started, deps.config.OPERATION_BATCH_MAX - 1, appliers);
  } catch (err) {
    if (deps.config.OPERATION_BATCH_MAX === 1) throw err;
    // Trouble with one operation of the batch must not become the others' (nor this job's): this
    // job's operation again, alone; the others keep their own jobs, which log their own trouble.
    finished = await applyBatch(deps, started, 0, appliers);
  }
  crashPoint(deps.config, 'after-commit-before-ack');
  await announce(deps, finished);
  await removeJobsOfPeers(deps, started, finished);
  return { status: finished.find((op) => op.id === operationId)?.status ?? 'already terminal' };
}

/** Locks the operation and its peers, applies each in turn, and commits them together. */
function applyBatch(deps: Deps, started: OperationRecord, peers: number, appliers: Appliers): Promise<OperationRecord[]> {
  return deps.db.transaction(async (trx) => {
    const ops = (await lockBatch(trx, started.id, started.partition, peers)).filter((op) => !isTerminal(op.status));
    if (!ops.length) return [];
    const audit = await takeChainTurn(trx, chainOf(started), ops.length);
    const finished: OperationRecord[] = [];
    // In turn: each one's writes are sent before the next reads, so operations on one card see each other.
    for (const op of ops) finished.push(await applyOne(trx, op, deps, appliers[op.type], audit));
    crashPoint(deps.config, 'before-commit');
    return finished;
  });
}

/**
 * Applies one operation and writes its outcome: succeeded with its writes, or failed with the
 * business code it was refused with (nothing else written). Any other error aborts the batch.
 */
async function applyOne(trx: Knex.Transaction, op: OperationRecord, deps: Deps, apply: ApplyOperation, audit: ChainTurn): Promise<OperationRecord> {
  let applied: Applied;
  try {
    applied = await apply(trx, op, deps);
  } catch (err) {
    if (!(err instanceof AppError) || err.retryable) throw err;
    const { outcome, writes } = refusal(trx, op, err);
    return finishOperation(trx, op.id, outcome, [...writes, ...audit(refusalAudit(op, err))]);
  }
  const event = eventInsert(trx, { ...applied.event, data: { operation_id: op.id, ...applied.event.data } }).toSQL();
  return finishOperation(trx, op.id, { status: 'succeeded', result: applied.result }, [...applied.writes, event, ...audit({ ...actorOf(op), ...applied.audit })]);
}

/** After commit, operations that rode along in a batch leave their jobs behind: drop them (a job already running is left alone). */
async function removeJobsOfPeers(deps: Deps, started: OperationRecord, finished: OperationRecord[]): Promise<void> {
  const queue = deps.queues.partitions[started.partition];
  const peers = finished.filter((op) => op.id !== started.id);
  if (!queue || !peers.length) return;
  try {
    await Promise.all(peers.map((op) => queue.remove(op.id)));
  } catch (err) {
    // Harmless: a leftover job finds its operation terminal.
    deps.logger.warn({ err: (err as Error).message }, 'could not remove the jobs of batched operations');
  }
}

/**
 * Ends an operation as failed with `error.code`, unless it already ended. Payments that fail tell
 * their merchant (payment.failed) through the outbox.
 */
export async function failOperation(deps: Deps, operationId: string, error: AppError): Promise<unknown> {
  const failed = await deps.db.transaction(async (trx) => {
    const op = await lockOperation(trx, operationId);
    if (!op || isTerminal(op.status)) return undefined;
    const { outcome, writes } = refusal(trx, op, error);
    return finishOperation(trx, op.id, outcome, [...writes, ...(await auditAppend(trx, { ...refusalAudit(op, error), chain: chainOf(op) }))]);
  });
  if (failed) await announce(deps, [failed]);
  return { status: 'failed', code: error.code };
}

/** A failed outcome with `error.code`; payments that fail tell their merchant (payment.failed) through the outbox. */
function refusal(trx: Knex.Transaction, op: OperationRecord, error: AppError) {
  const writes: Statement[] = [];
  if (op.type === 'payment') {
    const data = { operation_id: op.id, amount: formatMinor(op.amount_minor), external_order_id: op.params.external_order_id ?? null, error: { code: error.code, message: error.message } };
    writes.push(eventInsert(trx, { merchantId: op.merchant_id, type: 'payment.failed', data }).toSQL());
  }
  return { outcome: { status: 'failed' as const, code: error.code, message: error.message }, writes };
}

function refusalAudit(op: OperationRecord, error: AppError) {
  return { ...actorOf(op), action: `${op.type}.failed`, objectType: 'operation', objectId: op.id, context: { code: error.code } };
}

/** Who asked for the operation. */
function actorOf(op: OperationRecord) {
  return { actorType: 'api_key' as const, actorId: op.api_key_id, role: op.actor_role, requestId: op.request_id, ip: op.ip };
}

/** An operation's audit events chain with the rest of its card partition (already serial). */
const chainOf = (op: OperationRecord) => `card-ops-${op.partition}`;

/** After commit: count them, and hand the outcomes to any API request waiting on one (best effort; waits also poll). */
async function announce(deps: Deps, ops: OperationRecord[]): Promise<void> {
  if (!ops.length) return;
  for (const op of ops) {
    deps.metrics.operations.inc({ type: op.type, status: op.status, code: op.error_code ?? '' });
    if (op.completed_at) deps.metrics.operationLatency.observe({ type: op.type }, (op.completed_at.getTime() - op.created_at.getTime()) / 1000);
  }
  try {
    await deps.redis.publish(operationDoneChannel(deps.config.QUEUE_PREFIX), announcement(ops));
  } catch (err) {
    deps.logger.warn({ err: (err as Error).message, operation_ids: ops.map((op) => op.id) }, 'could not publish operation completion');
  }
}
