import { randomUUID } from 'node:crypto';
import type { Knex } from 'knex';
import { z } from 'zod';
import type { Deps } from '../app/deps.js';
import { AppError } from '../domain/errors.js';
import { formatMinor, parseAmount } from '../domain/money.js';
import { decideRefund, REFUND_REFUSALS } from '../domain/decide-refund.js';
import { fields } from '../domain/validate.js';
import { isRefusal } from '../domain/decision.js';
import { cardChange } from '../db/queries/ledgers.js';
import { toLevels } from '../db/queries/levels.js';
import { lockCardStatement, type LockedCard } from '../db/queries/member-cards.js';
import type { Read } from '../db/knex.js';
import type { OperationRecord } from '../db/queries/operations.js';
import { findMerchantTransaction, lockPaymentForRefund, refundOnPayment, transactionInsert } from '../db/queries/transactions.js';
import { amountOf, cardDraft, defineKind, type Applied } from './kind.js';

/**
 * A refund (DESIGN.md §2): partial or whole, cumulative refunds capped at the payment's final
 * amount, inside the window; balance credited only if the payment debited it; points clawed back
 * in proportion. The card is locked before the payment, the same order a charge takes.
 */
async function applyRefund(trx: Knex.Transaction, op: OperationRecord, deps: Deps, read: Read): Promise<Applied> {
  const [card] = op.card_id ? await read<LockedCard>(lockCardStatement(op.card_id)) : [];
  const payment = card && op.merchant_id && op.original_tx_no ? await lockPaymentForRefund(read, op.original_tx_no, op.merchant_id, deps.config.REFUND_WINDOW_DAYS) : undefined;
  const amountMinor = amountOf(op);
  const plan = decideRefund({ card, payment }, { amountMinor }, { refundWindowDays: deps.config.REFUND_WINDOW_DAYS, levels: payment ? toLevels(payment.levels) : [] });
  if (isRefusal(plan)) throw new AppError(plan.refused, plan.message, plan.details);
  // A plan means both were found (decideRefund refuses otherwise).
  const refundedCard = card!;
  const paid = payment!;
  const clawed = plan.pointsClawed;
  const originalStatus = plan.paymentStatusAfter;
  const refund = {
    id: randomUUID(),
    tx_no: paid.refund_tx_no,
    type: 'refund' as const,
    operation_id: op.id,
    card_id: refundedCard.id,
    member_id: paid.member_id,
    merchant_id: op.merchant_id,
    original_tx_id: paid.id,
    raw_amount_minor: amountMinor,
    final_amount_minor: amountMinor,
    points_clawed_back: clawed,
    via_balance: paid.via_balance,
    payment_method: paid.payment_method,
    reason: op.params.reason ?? null,
    tag: op.params.tag ?? null,
  };
  const { statements: cardWrites } = cardChange(trx, refundedCard, {
    transactionId: refund.id,
    balance: plan.balanceDeltaMinor ? { delta: plan.balanceDeltaMinor, reason: 'refund' } : undefined,
    points: { delta: -clawed, reason: 'clawback' },
    level: plan.levelAfter,
    status: plan.voucherReusable ? 'active' : undefined,
  });
  const writes = [transactionInsert(trx, refund), ...cardWrites, refundOnPayment(trx, paid.id, { refunded: plan.refundMinor, clawed, status: originalStatus })];

  const result = {
    refund_tx_no: refund.tx_no,
    original_tx_no: paid.tx_no,
    amount: formatMinor(amountMinor),
    points_clawed_back: clawed,
    original_status: originalStatus,
  };
  return {
    writes,
    result,
    event: { merchantId: op.merchant_id, type: 'refund.succeeded', data: { ...result, reason: refund.reason, tag: refund.tag } },
    audit: { action: 'refund.succeeded', objectType: 'transaction', objectId: refund.tx_no, context: { operation_id: op.id, original_tx_no: paid.tx_no, amount_minor: op.amount_minor } },
  };
}

/** POST /v1/refunds: the merchant refunds one of its payments, in part or whole. */
export const refund = defineKind({
  type: 'refund',
  http: {
    path: '/refunds',
    roles: ['merchant'],
    body: z.strictObject({
      original_tx_no: z.string().min(1).max(40),
      amount: fields.amount,
      reason: z.string().max(500).optional(),
      tag: fields.tag.optional(),
    }),
  },
  card: 'draft',
  async draft({ db, config, principal }, { body }) {
    const amount = parseAmount(body.amount, config.MAX_AMOUNT);
    // Another merchant's transaction is 404, as if it did not exist: the merchant learns nothing of other merchants' numbers.
    const original = await findMerchantTransaction(db, body.original_tx_no, principal.merchantId!);
    if (!original) throw new AppError('ORIGINAL_TX_NOT_FOUND', `No transaction ${body.original_tx_no} of this merchant`, undefined, false, 404);
    return {
      ...cardDraft('refund', original.card_id),
      merchant_id: principal.merchantId,
      amount_minor: amount,
      original_tx_no: body.original_tx_no,
      params: { reason: body.reason, tag: body.tag },
    };
  },
  apply: applyRefund,
  refusals: REFUND_REFUSALS,
  events: { succeeded: 'refund.succeeded' },
  transactionTypes: ['refund'],
  balanceReasons: ['refund'],
  pointReasons: ['clawback'],
});
