import type { Queue } from 'bullmq';
import type { Knex } from 'knex';
import type { Deps } from '../app/deps.js';
import { AppError, type ErrorCode } from '../domain/errors.js';
import { formatMinor } from '../domain/money.js';
import { partitionOf } from '../domain/partition.js';
import { auditAppend, takeChainTurn, turnOf, type AuditInput } from '../db/queries/audit-events.js';
import { eventInsert, type OutboxEvent } from '../db/queries/events.js';
import type { Read, Statement } from '../db/knex.js';
import {
  finishOperation,
  followUpInsert,
  isRunnable,
  isTerminal,
  lockBatch,
  lockOperation,
  outcomeUpdate,
  type Ending,
  type OperationRecord,
  type Outcome,
} from '../db/queries/operations.js';
import { announcement, operationDoneChannel } from '../db/operation-done.js';
import { pipelinedTransaction } from '../db/pipelined-transaction.js';
import { crashPoint } from './crash-points.js';
import { enqueueOperation, removeJobs } from './enqueue.js';
import { decideWave, HeldWrites, wavesOf } from './held-writes.js';
import { kindOf } from './index.js';
import { isRouted, Refused, type Applied, type FollowUp } from './kind.js';

/** A follow-up as inserted: what enqueueing it needs. */
type Enqueued = Pick<OperationRecord, 'id' | 'type' | 'partition'>;

/**
 * Runs an operation effectively once, together with the other operations queued on its partition
 * (up to OPERATION_BATCH_MAX in all, oldest first): one transaction, one commit for the batch.
 * Every operation row is re-read under lock in that transaction, so a job that runs twice
 * (stalled, re-enqueued by the reconciler) finds its operation terminal (or continued: handed on
 * to its follow-ups) and changes nothing, and the jobs of operations taken along are removed once
 * they are done. Follow-ups the batch inserted are enqueued after its commit; if the process dies
 * first, the reconciler enqueues them.
 */
export async function runOperation(deps: Deps, operationId: string): Promise<unknown> {
  let committed: Committed;
  try {
    committed = await applyBatch(deps, operationId, deps.config.OPERATION_BATCH_MAX - 1);
  } catch (err) {
    if (deps.config.OPERATION_BATCH_MAX === 1) throw err;
    // Trouble with one operation of the batch must not become the others' (nor this job's): this
    // job's operation again, alone; the others keep their own jobs, which log their own trouble.
    committed = await applyBatch(deps, operationId, 0);
  }
  const { partition, finished, applied, followUps, afterCommit } = committed;
  crashPoint(deps.config, 'after-commit-before-ack');
  if (followUps.length) {
    crashPoint(deps.config, 'after-commit-before-follow-ups');
    await Promise.all(followUps.map((f) => enqueueOperation(deps, f)));
  }
  for (const run of afterCommit) run();
  // Operations that rode along leave their jobs behind: dropped in the announcement's round trip (a job already running is left alone).
  const queue = partition === undefined ? undefined : deps.queues.partitions[partition];
  await announce(deps, finished, queue && { queue, ids: applied.filter((id) => id !== operationId) });
  // Not applied by this job: already terminal, or continued (its follow-ups end it), or unknown.
  if (!applied.includes(operationId)) return { skipped: 'already terminal' };
  return { status: finished.find((op) => op.id === operationId)?.status ?? 'continued' };
}

/** What a batch ended (its operations and those they ended), which of its own it applied, what it handed on, and what to run once it has committed. */
interface Committed {
  /** The partition of the job's operation; undefined when there is no such operation. */
  partition?: number;
  finished: OperationRecord[];
  applied: string[];
  followUps: Enqueued[];
  afterCommit: (() => void)[];
}

/**
 * Locks the operation and its peers, applies them in waves (each card once per wave, its
 * operations in their order; a wave's reads share round trips), and commits them together.
 */
async function applyBatch(deps: Deps, operationId: string, peers: number): Promise<Committed> {
  const { value } = await pipelinedTransaction(deps.db, async (trx) => {
    const { ops: locked, now, head } = await lockBatch(trx, operationId, peers, CHAIN_PREFIX);
    const own = locked.find((op) => op.id === operationId);
    // Finished ones are skipped (a job that ran twice), and so is one that waits for approval, and a continued one (applied
    // already: its follow-ups end it).
    const ops = locked.filter((op) => isRunnable(op.status) && !op.continued_at);
    const committed: Committed = { partition: own?.partition, finished: [], applied: [], followUps: [], afterCommit: [] };
    if (!own || !ops.length) return { value: committed };
    // The chain's turn came with the lock (a chain's first batch creates its head).
    const audit = head ? turnOf(trx, chainOf(own), head) : await takeChainTurn(trx, chainOf(own), ops.length);
    const held = new HeldWrites(trx);
    for (const wave of wavesOf(ops)) {
      const decisions = await decideWave(held, wave, (op, read) => decide(trx, op, deps, read));
      for (const [i, op] of wave.entries()) {
        const decided = decisions[i]!;
        // Audited in the batch's order, whichever decision of the wave came first.
        await held.hold(op.card_id, [outcomeUpdate(trx, op.id, decided.outcome, true).toSQL(), ...decided.writes, audit.append(decided.audit)]);
        committed.applied.push(op.id);
        if (decided.outcome.status !== 'continued') committed.finished.push(ended(op, decided.outcome, now));
        if (decided.ends) committed.finished.push(ended(decided.ends.op, decided.ends.outcome, now));
        committed.followUps.push(...decided.followUps);
        if (decided.after) committed.afterCommit.push(decided.after);
      }
    }
    // The last writes go with the COMMIT (one round trip): dying here commits none of them, as dying between the two did.
    crashPoint(deps.config, 'before-commit');
    return { value: committed, last: held.last([audit.moveHead()]) };
  });
  return value;
}

interface Decided {
  outcome: Outcome;
  writes: Statement[];
  audit: Omit<AuditInput, 'chain'>;
  followUps: Enqueued[];
  ends?: { op: OperationRecord; outcome: Ending };
  after?: () => void;
}

/**
 * Applies one operation's rules: succeeded with its writes, continued (handed on to follow-ups),
 * or failed with the business code it was refused with (and only its event, audit and the
 * follow-ups its kind hands on when refused). Any other error aborts the batch.
 */
async function decide(trx: Knex.Transaction, op: OperationRecord, deps: Deps, read: Read): Promise<Decided> {
  const kind = kindOf(op.type);
  let applied: Applied;
  try {
    applied = await kind.apply(trx, op, deps, read);
  } catch (err) {
    if (!(err instanceof AppError) || err.retryable) throw err;
    const { outcome, writes } = refusal(trx, op, err);
    const handedOn = followUpRows(trx, deps, op, kind.followUpsOnRefusal?.(op, err.code, err.message) ?? []);
    return {
      outcome,
      writes: [...writes, ...handedOn.writes],
      audit: refusalAudit(op, err),
      followUps: handedOn.followUps,
      after: err instanceof Refused ? err.afterCommit : undefined,
    };
  }
  const handedOn = followUpRows(trx, deps, op, applied.followUps ?? []);
  const writes = [...applied.writes, ...handedOn.writes];
  let outcome: Outcome = { status: 'continued' };
  if (!applied.continues) {
    outcome = { status: 'succeeded', result: applied.result };
    if (applied.event) writes.push(eventInsert(trx, { ...applied.event, data: { operation_id: op.id, ...applied.event.data } }).toSQL());
  }
  let ends: Decided['ends'];
  if (applied.ends) {
    const { op: other, outcome: end, event } = applied.ends;
    // Only an operation that handed on and waits, and only on this partition: a batch never writes another partition's rows.
    if (isTerminal(other.status) || !other.continued_at || other.partition !== op.partition) {
      throw new Error(`operation ${op.id} (${op.type}) may not end ${other.id} (${other.status}, continued ${!!other.continued_at}, partition ${other.partition})`);
    }
    writes.push(outcomeUpdate(trx, other.id, end).toSQL());
    if (event) writes.push(eventInsert(trx, { ...event, data: { operation_id: other.id, ...event.data } }).toSQL());
    ends = { op: other, outcome: end };
  }
  return { outcome, writes, audit: { ...actorOf(op), ...applied.audit }, followUps: handedOn.followUps, ends, after: applied.afterCommit };
}

/**
 * The rows of the operations `op` hands on to, on their cards' partitions, carrying who asked
 * and naming the first operation of the chain as their parent. Only internal kinds are handed on to.
 */
function followUpRows(trx: Knex.Transaction, deps: Deps, op: OperationRecord, followUps: FollowUp[]): { writes: Statement[]; followUps: Enqueued[] } {
  const rows = followUps.map((f) => {
    if (isRouted(kindOf(f.type))) throw new Error(`operation ${op.id} hands on to ${f.type}, a kind clients ask for: follow-ups are internal kinds`);
    return {
      id: f.id,
      type: f.type,
      principal: op.principal,
      idempotency_key: null,
      request_hash: op.request_hash,
      api_key_id: op.api_key_id,
      actor_role: op.actor_role,
      merchant_id: op.merchant_id,
      member_id: op.member_id,
      card_id: f.card_id,
      partition: partitionOf(f.card_id, deps.config.CARD_PARTITIONS),
      qr_token_hash: null,
      amount_minor: f.amount_minor,
      payment_method: null,
      original_tx_no: null,
      params: f.params,
      parent_id: op.parent_id ?? op.id,
      request_id: op.request_id,
      ip: op.ip,
    };
  });
  return { writes: rows.map((row) => followUpInsert(trx, row)), followUps: rows.map(({ id, type, partition }) => ({ id, type, partition })) };
}

/** The operation as its outcome leaves it (its row says the same once committed). */
function ended(op: OperationRecord, outcome: Ending, now: Date): OperationRecord {
  const times = { started_at: op.started_at ?? now, completed_at: now };
  return outcome.status === 'succeeded'
    ? { ...op, ...times, status: 'succeeded', result: outcome.result }
    : { ...op, ...times, status: 'failed', error_code: outcome.code, error_message: outcome.message };
}

/**
 * Ends an operation as failed with `error.code`, unless it already ended (a job out of attempts, a
 * merchant suspended since), was never a worker's (waiting for approval) or continued (its follow-ups end it), with the follow-ups its kind hands
 * on when refused. A kind that never gives up is left open instead (the reconciler drives it again).
 */
export async function failOperation(deps: Deps, operationId: string, error: AppError): Promise<{ status: 'failed'; code: ErrorCode } | { status: 'open' | 'already done' }> {
  const outcome = await deps.db.transaction(async (trx) => {
    const op = await lockOperation(trx, operationId);
    if (!op || !isRunnable(op.status) || op.continued_at) return 'already done' as const;
    const kind = kindOf(op.type);
    if (kind.giveUp === 'never') return 'open' as const;
    const { outcome: failure, writes } = refusal(trx, op, error);
    const handedOn = followUpRows(trx, deps, op, kind.followUpsOnRefusal?.(op, error.code, error.message) ?? []);
    const audited = await auditAppend(trx, { ...refusalAudit(op, error), chain: chainOf(op) });
    const failed = await finishOperation(trx, op.id, failure, [...writes, ...handedOn.writes, ...audited]);
    return { failed, followUps: handedOn.followUps };
  });
  if (typeof outcome === 'string') return { status: outcome };
  await Promise.all(outcome.followUps.map((f) => enqueueOperation(deps, f)));
  await announce(deps, [outcome.failed]);
  return { status: 'failed', code: error.code };
}

/** A failed outcome with `error.code`; a kind with a failure event (payment.failed) tells its merchant through the outbox. */
function refusal(trx: Knex.Transaction, op: OperationRecord, error: AppError) {
  const event = refusalEvent(op, error);
  const writes: Statement[] = event ? [eventInsert(trx, event).toSQL()] : [];
  return { outcome: { status: 'failed' as const, code: error.code, message: error.message }, writes };
}

/** The outbox event of an operation refused with `error` (its kind's failure event), or undefined for a kind without one. */
export function refusalEvent(op: OperationRecord, error: Pick<AppError, 'code' | 'message'>): OutboxEvent | undefined {
  const failed = kindOf(op.type).events?.failed;
  if (!failed) return undefined;
  const data = {
    operation_id: op.id,
    amount: op.amount_minor === null ? null : formatMinor(op.amount_minor),
    external_order_id: op.params.external_order_id ?? null,
    error: { code: error.code, message: error.message },
  };
  return { merchantId: op.merchant_id, type: failed, data };
}

function refusalAudit(op: OperationRecord, error: AppError) {
  return { ...actorOf(op), action: `${op.type}.failed`, objectType: 'operation', objectId: op.id, context: { code: error.code } };
}

/** Who asked for the operation. */
function actorOf(op: OperationRecord) {
  return { actorType: 'api_key' as const, actorId: op.api_key_id, role: op.actor_role, requestId: op.request_id, ip: op.ip };
}

/** An operation's audit events chain with the rest of its card partition (already serial). */
const CHAIN_PREFIX = 'card-ops-';
const chainOf = (op: OperationRecord) => `${CHAIN_PREFIX}${op.partition}`;

/**
 * After commit: count and log them (a line each for on-call), and hand the outcomes to any API
 * request waiting on one (best effort; waits also poll), with the removal of `jobs` in the same
 * round trip (harmless if lost: a leftover job finds its operation terminal).
 */
async function announce(deps: Deps, ops: OperationRecord[], jobs?: { queue: Queue; ids: string[] }): Promise<void> {
  for (const op of ops) {
    deps.metrics.operations.inc({ type: op.type, status: op.status, code: op.error_code ?? '' });
    const ms = op.completed_at ? op.completed_at.getTime() - op.created_at.getTime() : undefined;
    if (ms !== undefined) deps.metrics.operationLatency.observe({ type: op.type }, ms / 1000);
    deps.logger.info({ operation_id: op.id, type: op.type, outcome: op.status, code: op.error_code ?? undefined, card_id: op.card_id, partition: op.partition, ms }, 'operation done');
  }
  const channel = operationDoneChannel(deps.config.QUEUE_PREFIX);
  try {
    if (jobs?.ids.length) await removeJobs(jobs.queue, jobs.ids, (first) => ops.length && first.publish(channel, announcement(ops)));
    else if (ops.length) await deps.redis.publish(channel, announcement(ops));
  } catch (err) {
    deps.logger.warn({ err: (err as Error).message, operation_ids: ops.map((op) => op.id), jobs_to_remove: jobs?.ids.length }, 'could not publish operation completion or remove the jobs of batched operations');
  }
}
