import type { Deps } from '../app/deps.js';
import { AppError, forbidden, notFound } from '../domain/errors.js';
import { formatMinor } from '../domain/money.js';
import type { Caller } from '../domain/principal.js';
import { announcement, operationDoneChannel } from '../db/operation-done.js';
import { writeEvent } from '../db/queries/events.js';
import { approvedOperation, lockOperation, rejectedOperation, type OperationRecord } from '../db/queries/operations.js';
import { refusalEvent } from '../operations/runner.js';
import { auditBy } from './audit.js';
import { enqueue } from './operations.js';

export type ApprovalDecision = 'approve' | 'reject';

/**
 * Four eyes (API.md "Operator money tools"): an operation waiting in `requires_approval` is
 * approved (queued, then enqueued: it runs like any other, and its rules are judged then, under the
 * card lock) or rejected (terminal, APPROVAL_REJECTED, nothing applied) by an admin key other than
 * the one that asked for it (403 FORBIDDEN otherwise). The operation's row lock makes two
 * decisions take turns: the second finds it no longer waiting (409 CONFLICT). Both are audited.
 */
export async function decideApproval(deps: Deps, caller: Caller, id: string, decision: ApprovalDecision, reason?: string): Promise<OperationRecord> {
  const decided = await deps.db.transaction(async (trx) => {
    const op = await lockOperation(trx, id);
    if (!op) throw notFound('operation');
    if (op.status !== 'requires_approval') throw new AppError('CONFLICT', `The operation is ${op.status}: only one waiting for approval can be approved or rejected`, { status: op.status });
    if (op.api_key_id === caller.principal.keyId) throw forbidden('Four eyes: an admin key other than the one that asked must approve or reject this operation');
    const row = decision === 'approve' ? await approvedOperation(trx, id) : await rejectedOperation(trx, id, reason ? `Rejected by an approver: ${reason}` : 'Rejected by an approver');
    // A rejection ends it like a refusal: its kind's failure event, with APPROVAL_REJECTED.
    const event = decision === 'reject' ? refusalEvent(row!, { code: 'APPROVAL_REJECTED', message: row!.error_message! }) : undefined;
    if (event) await writeEvent(trx, event.merchantId, event.type, event.data);
    await auditBy(trx, caller, {
      action: `operation.${decision}`,
      objectType: 'operation',
      objectId: id,
      context: { type: op.type, card_id: op.card_id, amount: op.amount_minor === null ? null : formatMinor(op.amount_minor), requested_by_key_id: op.api_key_id, ...(reason ? { reason } : {}) },
    });
    return row!;
  });
  if (decision === 'approve') {
    await enqueue(deps, decided);
  } else {
    deps.metrics.operations.inc({ type: decided.type, status: decided.status, code: decided.error_code ?? '' });
    deps.logger.info({ operation_id: decided.id, type: decided.type, outcome: decided.status, code: decided.error_code, card_id: decided.card_id }, 'operation done');
    // Requests waiting on it hear at once (best effort: waits also poll).
    await deps.redis.publish(operationDoneChannel(deps.config.QUEUE_PREFIX), announcement([decided])).catch((err: Error) => deps.logger.warn({ err: err.message, operation_id: decided.id }, 'could not publish operation completion'));
  }
  return decided;
}
