import { randomUUID } from 'node:crypto';
import type { Knex } from 'knex';
import type { Deps } from '../app/deps.js';
import { AppError } from '../domain/errors.js';
import { formatMinor } from '../domain/money.js';
import { paymentStatusAfterRefund, pointsClawback } from '../domain/refund-math.js';
import { cardChange } from '../db/queries/ledgers.js';
import { toLevels } from '../db/queries/levels.js';
import { lockCardStatement, type LockedCard } from '../db/queries/member-cards.js';
import type { Read } from '../db/knex.js';
import type { OperationRecord } from '../db/queries/operations.js';
import { lockPaymentForRefund, refundOnPayment, transactionInsert } from '../db/queries/transactions.js';
import type { Applied } from './operation-runner.js';

/**
 * A refund (DESIGN.md §2): partial or whole, cumulative refunds capped at the payment's final
 * amount, inside the window; balance credited only if the payment debited it; points clawed back
 * in proportion. The card is locked before the payment, the same order a charge takes.
 */
export async function applyRefund(trx: Knex.Transaction, op: OperationRecord, deps: Deps, read: Read): Promise<Applied> {
  const [card] = op.card_id ? await read<LockedCard>(lockCardStatement(op.card_id)) : [];
  const payment = card && op.merchant_id && op.original_tx_no ? await lockPaymentForRefund(read, op.original_tx_no, op.merchant_id, deps.config.REFUND_WINDOW_DAYS) : undefined;
  if (!card || !payment || payment.card_id !== card.id) throw new AppError('ORIGINAL_TX_NOT_FOUND', 'No payment of this merchant has that number');
  if (payment.window_passed) throw new AppError('REFUND_WINDOW_EXPIRED', `Payments can be refunded for ${deps.config.REFUND_WINDOW_DAYS} days`);
  const available = payment.final_amount_minor - payment.refunded_amount_minor;
  if (op.amount_minor > available) {
    throw new AppError('REFUND_EXCEEDS_AVAILABLE', 'The refund is more than what is left of the payment', { available: formatMinor(available) });
  }

  const clawed = pointsClawback({
    pointsEarned: payment.points_earned,
    finalMinor: payment.final_amount_minor,
    refundedBeforeMinor: payment.refunded_amount_minor,
    refundMinor: op.amount_minor,
    cardPoints: card.points,
  });
  const refundedTotal = payment.refunded_amount_minor + op.amount_minor;
  const originalStatus = paymentStatusAfterRefund(payment.final_amount_minor, refundedTotal);
  const refund = {
    id: randomUUID(),
    tx_no: payment.refund_tx_no,
    type: 'refund' as const,
    operation_id: op.id,
    card_id: card.id,
    member_id: payment.member_id,
    merchant_id: op.merchant_id,
    original_tx_id: payment.id,
    raw_amount_minor: op.amount_minor,
    final_amount_minor: op.amount_minor,
    points_clawed_back: clawed,
    via_balance: payment.via_balance,
    payment_method: payment.payment_method,
    reason: op.params.reason ?? null,
    tag: op.params.tag ?? null,
  };
  const { statements: cardWrites } = cardChange(trx, card, toLevels(payment.levels), {
    transactionId: refund.id,
    balance: payment.via_balance ? { delta: op.amount_minor, reason: 'refund' } : undefined,
    points: { delta: -clawed, reason: 'clawback' },
    // A voucher whose only use is refunded in full can be used again (its value is back on it).
    status: card.type === 'voucher' && card.status === 'used' && originalStatus === 'refunded' ? 'active' : undefined,
  });
  const writes = [transactionInsert(trx, refund), ...cardWrites, refundOnPayment(trx, payment.id, { refunded: op.amount_minor, clawed, status: originalStatus })];

  const result = {
    refund_tx_no: refund.tx_no,
    original_tx_no: payment.tx_no,
    amount: formatMinor(op.amount_minor),
    points_clawed_back: clawed,
    original_status: originalStatus,
  };
  return {
    writes,
    result,
    event: { merchantId: op.merchant_id, type: 'refund.succeeded', data: { ...result, reason: refund.reason, tag: refund.tag } },
    audit: { action: 'refund.succeeded', objectType: 'transaction', objectId: refund.tx_no, context: { operation_id: op.id, original_tx_no: payment.tx_no, amount_minor: op.amount_minor } },
  };
}
