import { randomUUID } from 'node:crypto';
import { Router, type Request, type Response } from 'express';
import { z } from 'zod';
import type { Deps } from '../../app/deps.js';
import { canonicalJson } from '../../domain/audit-chain.js';
import { AppError, notFound } from '../../domain/errors.js';
import { parseAmount } from '../../domain/money.js';
import { sha256 } from '../../domain/tokens.js';
import {
  findByIdempotencyKey,
  findOperation,
  insertOperation,
  isTerminal,
  type NewOperation,
  type OperationRecord,
} from '../../db/queries/operations.js';
import { findMerchantTransaction } from '../../db/queries/transactions.js';
import { operationJobOptions } from '../../jobs/queues.js';
import { partitionOf } from '../../domain/partition.js';
import { cardFor } from '../access.js';
import type { Principal } from '../context.js';
import { allow, principalOf } from '../middleware/auth.js';
import { rateLimit } from '../middleware/rate-limit.js';
import type { AnnouncedOperation } from '../../db/operation-done.js';
import type { OperationWaiter } from '../operation-waiter.js';
import { operationJson } from '../serializers.js';
import { fields, parse } from '../validate.js';
import { fieldError } from '../route-helpers.js';
import { isUniqueViolation } from '../../db/pg-errors.js';

const EXTERNAL_METHODS = ['cash', 'credit_card', 'wechat', 'alipay', 'line_pay'] as const;

const paymentBody = z.strictObject({
  qr: z.string().min(1).max(200),
  amount: fields.amount,
  payment_method: z.enum(EXTERNAL_METHODS).optional(),
  external_order_id: z.string().min(1).max(100).optional(),
  tag: fields.tag.optional(),
});

const refundBody = z.strictObject({
  original_tx_no: z.string().min(1).max(40),
  amount: fields.amount,
  reason: z.string().max(500).optional(),
  tag: fields.tag.optional(),
});

const rechargeBody = z.strictObject({
  amount: fields.amount,
  payment_method: z.enum([...EXTERNAL_METHODS, 'bank_transfer']),
  payment_reference: z.string().trim().min(1).max(200).optional(),
  tag: fields.tag.optional(),
});

/** The parts of an operation a route decides; the rest comes from the request. */
type Draft = Omit<NewOperation, 'id' | 'principal' | 'idempotency_key' | 'request_hash' | 'api_key_id' | 'actor_role' | 'partition' | 'request_id' | 'ip'>;

export function operationRoutes(deps: Deps, waiter: OperationWaiter): Router {
  const router = Router();
  const { config } = deps;
  const paymentLimit = rateLimit(deps, 'payment', config.RATE_LIMIT_PAYMENT_PER_KEY_PER_MIN, (req) => req.principal?.keyId);

  router.post('/payments', allow('merchant'), paymentLimit, async (req, res) => {
    const principal = principalOf(req);
    const idempotencyKey = requireIdempotencyKey(req);
    const body = parse(paymentBody, req.body);
    const amount = parseAmount(body.amount, config.MAX_AMOUNT);
    const qrHash = sha256(body.qr);
    // Only the card is resolved here (from the QR, in the insert), to pick its partition; every
    // rule is judged by the worker under the card lock.
    const draft: Draft = {
      type: 'payment',
      merchant_id: principal.merchantId,
      member_id: null,
      card_id: null,
      qr_token_hash: qrHash,
      amount_minor: amount,
      payment_method: body.payment_method ?? null,
      original_tx_no: null,
      params: { external_order_id: body.external_order_id, tag: body.tag },
    };
    await accept(req, res, principal, idempotencyKey, async () => draft, qrHash);
  });

  router.post('/refunds', allow('merchant'), async (req, res) => {
    const principal = principalOf(req);
    const idempotencyKey = requireIdempotencyKey(req);
    const body = parse(refundBody, req.body);
    const amount = parseAmount(body.amount, config.MAX_AMOUNT);
    await accept(req, res, principal, idempotencyKey, async () => {
      // Another merchant's transaction is 404, as if it did not exist.
      const original = await findMerchantTransaction(deps.db, body.original_tx_no, principal.merchantId!);
      // API.md's code for it, still 404: the merchant learns nothing of other merchants' numbers.
      if (!original) throw new AppError('ORIGINAL_TX_NOT_FOUND', `No transaction ${body.original_tx_no} of this merchant`, undefined, false, 404);
      return {
        type: 'refund',
        merchant_id: principal.merchantId,
        member_id: null,
        card_id: original.card_id,
        qr_token_hash: null,
        amount_minor: amount,
        payment_method: null,
        original_tx_no: body.original_tx_no,
        params: { reason: body.reason, tag: body.tag },
      };
    });
  });

  /**
   * Stored value is credited only against money received: the member-app backend after its
   * payment provider confirmed (payment_reference, once per method), or an admin. A member
   * token alone cannot credit its own card.
   */
  router.post('/cards/:id/recharges', allow('app', 'admin'), async (req, res) => {
    const principal = principalOf(req);
    const idempotencyKey = requireIdempotencyKey(req);
    const body = parse(rechargeBody, req.body);
    if (principal.role === 'app' && body.payment_reference === undefined) throw fieldError('payment_reference', "is required for app keys: the payment provider's id of the money received");
    const amount = parseAmount(body.amount, config.MAX_RECHARGE);
    const cardId = String(req.params.id);
    await accept(req, res, principal, idempotencyKey, async () => {
      const { card } = await cardFor(deps.db, principal, cardId, 'pay');
      return {
        type: 'recharge',
        merchant_id: null,
        member_id: principal.memberId,
        card_id: card.id,
        qr_token_hash: null,
        amount_minor: amount,
        payment_method: body.payment_method,
        payment_reference: body.payment_reference ?? null,
        original_tx_no: null,
        params: { tag: body.tag },
      };
    });
  });

  router.get('/operations/:id', allow('merchant', 'member', 'app', 'admin'), async (req, res) => {
    const principal = principalOf(req);
    const op = await findOperation(deps.db, String(req.params.id));
    if (!op || !mayRead(principal, op)) throw notFound('operation');
    await respond(req, res, op, 'read');
  });

  /**
   * Idempotent acceptance (DESIGN.md "Idempotency"): the same key and request give the same
   * operation whatever its state; a different request under the key is 409. The request hash is
   * taken over the normalized draft, so `299` and `"299.00"` are the same request. A payment's
   * card and member are those of the QR with hash `cardOfQrHash`, found by the insert itself.
   */
  async function accept(req: Request, res: Response, principal: Principal, idempotencyKey: string, resolve: () => Promise<Draft>, cardOfQrHash?: string) {
    let draft: Draft;
    try {
      draft = await resolve();
    } catch (err) {
      // A retry of an accepted request still gets its operation even if, say, the card was unbound since.
      const existing = await findByIdempotencyKey(deps.db, principal.scope, idempotencyKey);
      if (existing) return respond(req, res, existing, 'replay');
      throw err;
    }
    // The card of a payment is looked up from its QR, which a success consumes: only what the client sent counts.
    const requestHash = sha256(canonicalJson({ ...draft, member_id: undefined, card_id: draft.type === 'recharge' ? draft.card_id : undefined }));
    // New keys are the common case: insert straight away, and look for the earlier operation only on a conflict.
    const id = `op_${randomUUID().replaceAll('-', '')}`;
    const inserted = await insertOperation(deps.db, {
      ...draft,
      id,
      principal: principal.scope,
      idempotency_key: idempotencyKey,
      request_hash: requestHash,
      api_key_id: principal.keyId,
      actor_role: principal.role,
      partition: partitionOf(draft.card_id ?? id, config.CARD_PARTITIONS),
      request_id: req.id,
      ip: req.ip ?? null,
    }, cardOfQrHash === undefined ? undefined : { hash: cardOfQrHash, partitions: config.CARD_PARTITIONS }).catch((err: unknown) => {
      if (isUniqueViolation(err, 'operations_payment_reference')) throw new AppError('PAYMENT_REFERENCE_USED', 'This payment_reference has already been credited', { payment_method: draft.payment_method, payment_reference: draft.payment_reference });
      throw err;
    });
    if (!inserted) {
      // The key was used before (or by a concurrent request that won the insert): answer with that operation.
      const earlier = await findByIdempotencyKey(deps.db, principal.scope, idempotencyKey);
      if (!earlier) throw new AppError('CONFLICT', 'Concurrent request with this Idempotency-Key; retry');
      return respond(req, res, sameRequestOr409(earlier, requestHash), 'replay');
    }
    // Listen before enqueueing: a worker quicker than this request cannot then finish unheard.
    const done = outcome(req, res, inserted);
    done.catch(() => undefined); // its failure is answered below, after the enqueue
    await enqueue(inserted);
    send(res, await done, 'created');
  }

  /** Redis trouble does not lose the operation: it is durable, and the reconciler enqueues it later. */
  async function enqueue(op: OperationRecord) {
    try {
      await deps.queues.partitions[op.partition]!.add(op.type, { operationId: op.id }, operationJobOptions(config, op.id));
    } catch (err) {
      deps.logger.warn({ err: (err as Error).message, operation_id: op.id }, 'enqueue failed; the reconciler will enqueue it');
    }
  }

  /**
   * With `Prefer: wait=N`, waits up to N s for a terminal status. POSTs answer 200 once terminal
   * and 202 while open; GET always answers 200 with the current state.
   */
  async function respond(req: Request, res: Response, op: OperationRecord, kind: 'created' | 'replay' | 'read') {
    send(res, await outcome(req, res, op), kind);
  }

  /** The operation once terminal, or as it stands when the wait (if asked for) ends; `op` was just read. */
  function outcome(req: Request, res: Response, op: OperationRecord): Promise<AnnouncedOperation> {
    const wait = preferredWait(req, config.MAX_WAIT_S);
    if (wait === undefined) return Promise.resolve(op);
    res.setHeader('Preference-Applied', `wait=${wait}`);
    if (isTerminal(op.status)) return Promise.resolve(op);
    return waiter.waitFor<AnnouncedOperation>(op.id, wait * 1000, async () => (await findOperation(deps.db, op.id)) ?? op, (o) => isTerminal(o.status), op);
  }

  function send(res: Response, op: AnnouncedOperation, kind: 'created' | 'replay' | 'read') {
    res.setHeader('Location', `/v1/operations/${op.id}`);
    res.status(kind === 'read' || isTerminal(op.status) ? 200 : 202).json(operationJson(op));
  }

  return router;
}

function requireIdempotencyKey(req: Request): string {
  const key = req.get('idempotency-key');
  if (key === undefined || key.trim() === '') throw new AppError('IDEMPOTENCY_KEY_REQUIRED', 'Send an Idempotency-Key header (≤ 255 characters) with every operation');
  if (key.length > 255) throw new AppError('VALIDATION_ERROR', 'Idempotency-Key may be at most 255 characters', { issues: [{ field: 'Idempotency-Key', message: 'too long' }] });
  return key;
}

function sameRequestOr409(existing: OperationRecord, requestHash: string): OperationRecord {
  if (existing.request_hash !== requestHash) {
    throw new AppError('IDEMPOTENCY_KEY_REUSED', 'This Idempotency-Key was used for a different request', { operation_id: existing.id });
  }
  return existing;
}

/** `Prefer: wait=N` (RFC 7240), capped at MAX_WAIT_S; undefined when not asked for. */
function preferredWait(req: Request, max: number): number | undefined {
  const match = /(?:^|[,;\s])wait=(\d{1,4})(?:$|[,;\s])/i.exec(req.get('prefer') ?? '');
  return match ? Math.min(Number(match[1]), max) : undefined;
}

/** Payments and refunds are read by the merchant that made them; recharges by whoever made them; admins read all. */
function mayRead(principal: Principal, op: OperationRecord): boolean {
  if (principal.role === 'admin') return true;
  if (op.type !== 'recharge') return principal.role === 'merchant' && op.merchant_id === principal.merchantId;
  if (principal.role === 'member') return op.member_id === principal.memberId;
  return principal.role === 'app' && op.api_key_id === principal.keyId;
}
