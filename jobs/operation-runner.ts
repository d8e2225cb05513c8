import type { Knex } from 'knex';
import type { Deps } from '../config/deps.js';
import { AppError } from '../domain/errors.js';
import { formatMinor } from '../domain/money.js';
import { auditAppend } from '../db/queries/audit-events.js';
import { eventInsert, type EventType, type OutboxEvent } from '../db/queries/events.js';
import type { Statement } from '../db/knex.js';
import { finishOperation, isTerminal, lockOperation, markProcessing, type OperationRecord } from '../db/queries/operations.js';
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

/**
 * Runs an operation effectively once: the operation row is re-read under lock inside the one
 * transaction that writes everything else, so a job that runs twice (stalled, re-enqueued by the
 * reconciler) finds it terminal and changes nothing.
 */
export async function runOperation(deps: Deps, operationId: string, apply: ApplyOperation): Promise<unknown> {
  const started = await markProcessing(deps.db, operationId);
  if (!started) return { skipped: 'already terminal' };
  let finished: OperationRecord | undefined;
  try {
    finished = await deps.db.transaction(async (trx) => {
      const op = await lockOperation(trx, operationId);
      if (!op || isTerminal(op.status)) return undefined;
      const applied = await apply(trx, op, deps);
      const audit = await auditAppend(trx, { ...actorOf(op), ...applied.audit });
      const event = eventInsert(trx, { ...applied.event, data: { operation_id: op.id, ...applied.event.data } }).toSQL();
      const row = await finishOperation(trx, op.id, { status: 'succeeded', result: applied.result }, [...applied.writes, event, ...audit]);
      crashPoint(deps.config, 'before-commit');
      return row;
    });
    crashPoint(deps.config, 'after-commit-before-ack');
  } catch (err) {
    if (err instanceof AppError && !err.retryable) return failOperation(deps, operationId, err);
    throw err;
  }
  if (finished) await announce(deps, finished);
  return { status: finished?.status ?? 'already terminal' };
}

/**
 * Ends an operation as failed with `error.code`, unless it already ended. Payments that fail tell
 * their merchant (payment.failed) through the outbox.
 */
export async function failOperation(deps: Deps, operationId: string, error: AppError): Promise<unknown> {
  const failed = await deps.db.transaction(async (trx) => {
    const op = await lockOperation(trx, operationId);
    if (!op || isTerminal(op.status)) return undefined;
    const event: OutboxEvent | undefined =
      op.type === 'payment'
        ? {
            merchantId: op.merchant_id,
            type: 'payment.failed',
            data: { operation_id: op.id, amount: formatMinor(op.amount_minor), external_order_id: op.params.external_order_id ?? null, error: { code: error.code, message: error.message } },
          }
        : undefined;
    const audit = await auditAppend(trx, { ...actorOf(op), action: `${op.type}.failed`, objectType: 'operation', objectId: op.id, context: { code: error.code } });
    return finishOperation(trx, op.id, { status: 'failed', code: error.code, message: error.message }, [...(event ? [eventInsert(trx, event).toSQL()] : []), ...audit]);
  });
  if (failed) await announce(deps, failed);
  return { status: 'failed', code: error.code };
}

/** Who asked for the operation; its audit events chain with the rest of its card partition. */
function actorOf(op: OperationRecord) {
  return { actorType: 'api_key' as const, actorId: op.api_key_id, role: op.actor_role, requestId: op.request_id, ip: op.ip, chain: `card-ops-${op.partition}` };
}

/** After commit: count it, and hand the outcome to any API request waiting on it (best effort; waits also poll). */
async function announce(deps: Deps, op: OperationRecord): Promise<void> {
  deps.metrics.operations.inc({ type: op.type, status: op.status, code: op.error_code ?? '' });
  if (op.completed_at) deps.metrics.operationLatency.observe({ type: op.type }, (op.completed_at.getTime() - op.created_at.getTime()) / 1000);
  try {
    await deps.redis.publish(operationDoneChannel(deps.config.QUEUE_PREFIX), announcement(op));
  } catch (err) {
    deps.logger.warn({ err: (err as Error).message, operation_id: op.id }, 'could not publish operation completion');
  }
}
