import type { Knex } from 'knex';
import type { Deps } from '../app/deps.js';
import { AppError } from '../domain/errors.js';
import { formatMinor } from '../domain/money.js';
import { auditAppend, takeChainTurn, type ChainTurn } from '../db/queries/audit-events.js';
import { eventInsert } from '../db/queries/events.js';
import type { Read, Statement } from '../db/knex.js';
import { finishOperation, isRunnable, lockBatch, lockOperation, markProcessing, outcomeUpdate, type OperationRecord, type Outcome } from '../db/queries/operations.js';
import { announcement, operationDoneChannel } from '../db/operation-done.js';
import { crashPoint } from './crash-points.js';
import { HeldWrites } from './held-writes.js';
import { kindOf } from './index.js';
import { Refused, type Applied } from './kind.js';

/**
 * Runs an operation effectively once, together with the other operations queued on its partition
 * (up to OPERATION_BATCH_MAX in all, oldest first): one transaction, one commit for the batch.
 * Every operation row is re-read under lock in that transaction, so a job that runs twice
 * (stalled, re-enqueued by the reconciler) finds its operation terminal and changes nothing, and
 * the jobs of operations taken along are removed once they are done.
 */
export async function runOperation(deps: Deps, operationId: string): Promise<unknown> {
  const started = await markProcessing(deps.db, operationId);
  if (!started) return { skipped: 'already terminal' };
  let committed: Committed;
  try {
    committed = await applyBatch(deps, started, deps.config.OPERATION_BATCH_MAX - 1);
  } catch (err) {
    if (deps.config.OPERATION_BATCH_MAX === 1) throw err;
    // Trouble with one operation of the batch must not become the others' (nor this job's): this
    // job's operation again, alone; the others keep their own jobs, which log their own trouble.
    committed = await applyBatch(deps, started, 0);
  }
  const { finished, afterCommit } = committed;
  crashPoint(deps.config, 'after-commit-before-ack');
  for (const run of afterCommit) run();
  await announce(deps, finished);
  await removeJobsOfPeers(deps, started, finished);
  return { status: finished.find((op) => op.id === operationId)?.status ?? 'already terminal' };
}

/** The operations a batch ended, and what to run once it has committed. */
interface Committed {
  finished: OperationRecord[];
  afterCommit: (() => void)[];
}

/** Locks the operation and its peers, applies each in turn, and commits them together. */
function applyBatch(deps: Deps, started: OperationRecord, peers: number): Promise<Committed> {
  return deps.db.transaction(async (trx) => {
    const { ops: locked, now } = await lockBatch(trx, started.id, started.partition, peers);
    // Finished ones are skipped (a job that ran twice), and so is one that waits for approval.
    const ops = locked.filter((op) => isRunnable(op.status));
    if (!ops.length) return { finished: [], afterCommit: [] };
    const audit = await takeChainTurn(trx, chainOf(started), ops.length);
    const held = new HeldWrites(trx);
    const finished: OperationRecord[] = [];
    const afterCommit: (() => void)[] = [];
    for (const op of ops) {
      const { outcome, writes, after } = await decide(trx, op, deps, held.reader(op.card_id), audit);
      await held.hold(op.card_id, [outcomeUpdate(trx, op.id, outcome).toSQL(), ...writes]);
      finished.push(ended(op, outcome, now));
      if (after) afterCommit.push(after);
    }
    await held.flush([audit.moveHead()]);
    crashPoint(deps.config, 'before-commit');
    return { finished, afterCommit };
  });
}

/**
 * Applies one operation's rules: succeeded with its writes, or failed with the business code it
 * was refused with (and only its event and audit). Any other error aborts the batch.
 */
async function decide(
  trx: Knex.Transaction,
  op: OperationRecord,
  deps: Deps,
  read: Read,
  audit: ChainTurn,
): Promise<{ outcome: Outcome; writes: Statement[]; after?: () => void }> {
  let applied: Applied;
  try {
    applied = await kindOf(op.type).apply(trx, op, deps, read);
  } catch (err) {
    if (!(err instanceof AppError) || err.retryable) throw err;
    const { outcome, writes } = refusal(trx, op, err);
    return { outcome, writes: [...writes, audit.append(refusalAudit(op, err))], after: err instanceof Refused ? err.afterCommit : undefined };
  }
  const event = eventInsert(trx, { ...applied.event, data: { operation_id: op.id, ...applied.event.data } }).toSQL();
  return { outcome: { status: 'succeeded', result: applied.result }, writes: [...applied.writes, event, audit.append({ ...actorOf(op), ...applied.audit })], after: applied.afterCommit };
}

/** The operation as its outcome leaves it (its row says the same once committed). */
function ended(op: OperationRecord, outcome: Outcome, now: Date): OperationRecord {
  const times = { started_at: op.started_at ?? now, completed_at: now };
  return outcome.status === 'succeeded'
    ? { ...op, ...times, status: 'succeeded', result: outcome.result }
    : { ...op, ...times, status: 'failed', error_code: outcome.code, error_message: outcome.message };
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

/** Ends an operation as failed with `error.code`, unless it already ended or was never a worker's (a job out of attempts, a merchant suspended since). */
export async function failOperation(deps: Deps, operationId: string, error: AppError): Promise<unknown> {
  const failed = await deps.db.transaction(async (trx) => {
    const op = await lockOperation(trx, operationId);
    if (!op || !isRunnable(op.status)) return undefined;
    const { outcome, writes } = refusal(trx, op, error);
    return finishOperation(trx, op.id, outcome, [...writes, ...(await auditAppend(trx, { ...refusalAudit(op, error), chain: chainOf(op) }))]);
  });
  if (failed) await announce(deps, [failed]);
  return { status: 'failed', code: error.code };
}

/** A failed outcome with `error.code`; a kind with a failure event (payment.failed) tells its merchant through the outbox. */
function refusal(trx: Knex.Transaction, op: OperationRecord, error: AppError) {
  const failed = kindOf(op.type).events.failed;
  const data = { operation_id: op.id, amount: formatMinor(op.amount_minor), external_order_id: op.params.external_order_id ?? null, error: { code: error.code, message: error.message } };
  const writes: Statement[] = failed ? [eventInsert(trx, { merchantId: op.merchant_id, type: failed, data }).toSQL()] : [];
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

/** After commit: count and log them (a line each for on-call), and hand the outcomes to any API request waiting on one (best effort; waits also poll). */
async function announce(deps: Deps, ops: OperationRecord[]): Promise<void> {
  if (!ops.length) return;
  for (const op of ops) {
    deps.metrics.operations.inc({ type: op.type, status: op.status, code: op.error_code ?? '' });
    const ms = op.completed_at ? op.completed_at.getTime() - op.created_at.getTime() : undefined;
    if (ms !== undefined) deps.metrics.operationLatency.observe({ type: op.type }, ms / 1000);
    deps.logger.info({ operation_id: op.id, type: op.type, outcome: op.status, code: op.error_code ?? undefined, card_id: op.card_id, partition: op.partition, ms }, 'operation done');
  }
  try {
    await deps.redis.publish(operationDoneChannel(deps.config.QUEUE_PREFIX), announcement(ops));
  } catch (err) {
    deps.logger.warn({ err: (err as Error).message, operation_ids: ops.map((op) => op.id) }, 'could not publish operation completion');
  }
}
