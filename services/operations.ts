import { randomUUID } from 'node:crypto';
import type { Deps } from '../app/deps.js';
import { canonicalJson } from '../domain/audit-chain.js';
import { AppError, notFound } from '../domain/errors.js';
import { partitionOf } from '../domain/partition.js';
import type { Caller, Principal } from '../domain/principal.js';
import { sha256 } from '../domain/tokens.js';
import { findByIdempotencyKey, findOperation, insertOperation, isAtRest, type OperationRecord } from '../db/queries/operations.js';
import { isUniqueViolation } from '../db/pg-errors.js';
import type { AnnouncedOperation } from '../db/operation-done.js';
import { enqueueOperation } from '../operations/enqueue.js';
import type { Draft, OperationRequest, OperationRoute, RoutedKind } from '../operations/kind.js';
import { cardFor } from './card-access.js';

/** Waits for an operation's announced outcome (the API's OperationWaiter), re-reading as a fallback. */
export type WaitFor = (op: OperationRecord, waitMs: number) => Promise<AnnouncedOperation>;

/** How an accepted request is answered: the operation as it stands, and whether this request created it. */
export interface Accepted {
  op: AnnouncedOperation;
  created: boolean;
}

/**
 * Accepts one operation request of any kind (DESIGN.md "Idempotency"): the kind's route makes the
 * draft, the insert is idempotent on (principal scope, key), the job is enqueued, and with `waitMs`
 * the outcome is awaited. The same key and request give the same operation whatever its state; a
 * different request under the key is 409. The request hash is taken over the normalized draft,
 * so `299` and `"299.00"` are the same request. An operation the kind holds for four eyes is
 * stored as `requires_approval` and neither enqueued nor waited for (services/approvals.ts).
 */
export async function acceptOperation<Body>(
  deps: Deps,
  caller: Caller,
  kind: RoutedKind,
  route: OperationRoute,
  idempotencyKey: string,
  request: OperationRequest<Body>,
  wait?: { ms: number; waitFor: WaitFor },
): Promise<Accepted> {
  const { principal } = caller;
  let draft: Draft;
  try {
    draft = await route.draft({ db: deps.db, config: deps.config, principal, cardFor: (id, need) => cardFor(deps.db, principal, id, need) }, request as never);
  } catch (err) {
    // A malformed request is refused as such; a well-formed one whose lookups fail now (say, the
    // card was unbound since) may be the retry of an accepted one, which still gets its operation.
    if (err instanceof AppError && err.status === 400) throw err;
    const existing = await findByIdempotencyKey(deps.db, principal.scope, idempotencyKey);
    if (existing) return { op: await outcome(existing, wait), created: false };
    throw err;
  }
  // A card found at acceptance (from the QR, which a success consumes, or the original payment) is
  // not part of what the client sent; a kind's further route is (its path joins the hash).
  const requestHash = sha256(canonicalJson({ ...draft, member_id: undefined, card_id: route.card === 'request' ? draft.card_id : undefined, route: route === kind ? undefined : route.http.path }));
  // New keys are the common case: insert straight away, and look for the earlier operation only on a conflict.
  const id = `op_${randomUUID().replaceAll('-', '')}`;
  const { CARD_PARTITIONS: partitions } = deps.config;
  const held = kind.needsApproval?.(draft, deps.config) ?? false;
  const inserted = await insertOperation(
    deps.db,
    {
      ...draft,
      ...(held ? { status: 'requires_approval' as const } : {}),
      id,
      principal: principal.scope,
      idempotency_key: idempotencyKey,
      request_hash: requestHash,
      api_key_id: principal.keyId,
      actor_role: principal.role,
      partition: partitionOf(draft.card_id ?? id, partitions),
      request_id: caller.requestId,
      ip: caller.ip,
    },
    route.card === 'qr' ? { hash: draft.qr_token_hash!, partitions } : undefined,
  ).catch((err: unknown) => {
    if (isUniqueViolation(err, 'operations_payment_reference')) throw new AppError('PAYMENT_REFERENCE_USED', 'This payment_reference is credited, or being credited, by another recharge', { payment_method: draft.payment_method, payment_reference: draft.payment_reference });
    throw err;
  });
  if (!inserted) {
    // The key was used before (or by a concurrent request that won the insert): answer with that operation.
    const earlier = await findByIdempotencyKey(deps.db, principal.scope, idempotencyKey);
    if (!earlier) throw new AppError('CONFLICT', 'Concurrent request with this Idempotency-Key; retry');
    if (earlier.request_hash !== requestHash) throw new AppError('IDEMPOTENCY_KEY_REUSED', 'This Idempotency-Key was used for a different request', { operation_id: earlier.id });
    return { op: await outcome(earlier, wait), created: false };
  }
  // Held for approval: the approval enqueues it.
  if (held) return { op: inserted, created: true };
  // Listen before enqueueing: a worker quicker than this request cannot then finish unheard.
  const done = outcome(inserted, wait);
  done.catch(() => undefined); // its failure is answered below, after the enqueue
  await enqueueOperation(deps, inserted);
  return { op: await done, created: true };
}

/** An operation the caller may read (404 otherwise, as if it did not exist), once terminal or when the wait ends. */
export async function readOperation(deps: Deps, principal: Principal, id: string, wait?: { ms: number; waitFor: WaitFor }): Promise<AnnouncedOperation> {
  const op = await findOperation(deps.db, id);
  if (!op || !mayRead(principal, op)) throw notFound('operation');
  return outcome(op, wait);
}

/** Redis trouble does not lose the operation: it is durable, and the reconciler enqueues it later. */
export const enqueue = (deps: Deps, op: OperationRecord): Promise<void> => enqueueOperation(deps, op);

/** The operation once at rest (terminal, or waiting for an approver), or as it stands when the wait (if asked for) ends; `op` was just read. */
function outcome(op: OperationRecord, wait: { ms: number; waitFor: WaitFor } | undefined): Promise<AnnouncedOperation> {
  if (!wait || isAtRest(op.status)) return Promise.resolve(op);
  return wait.waitFor(op, wait.ms);
}

/** Admins read every operation; a merchant those its keys made; a member its own; an app key those it made. */
function mayRead(principal: Principal, op: OperationRecord): boolean {
  switch (principal.role) {
    case 'admin':
      return true;
    case 'merchant':
      return op.actor_role === 'merchant' && op.merchant_id === principal.merchantId;
    case 'member':
      return op.actor_role === 'member' && op.member_id === principal.memberId;
    case 'app':
      return op.api_key_id === principal.keyId;
  }
}
