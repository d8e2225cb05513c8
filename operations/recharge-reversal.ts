import { randomUUID } from 'node:crypto';
import type { Knex } from 'knex';
import { z } from 'zod';
import type { Deps } from '../app/deps.js';
import { decideRechargeReversal, RECHARGE_REVERSAL_REFUSALS } from '../domain/decide-recharge-reversal.js';
import { isRefusal } from '../domain/decision.js';
import { AppError } from '../domain/errors.js';
import { formatMinor, parseAmount } from '../domain/money.js';
import { fields } from '../domain/validate.js';
import { cardChange } from '../db/queries/ledgers.js';
import type { LockedCard } from '../db/queries/member-cards.js';
import type { Read } from '../db/knex.js';
import type { OperationRecord } from '../db/queries/operations.js';
import { lockCardWithTxNo, lockRechargeForReversal, refundOnPayment, transactionInsert } from '../db/queries/transactions.js';
import { amountOf, cardDraft, defineKind, type Applied } from './kind.js';

/**
 * A chargeback of a recharge: the card, then the recharge, locked; what all reversals of it take
 * stays within what it credited (held on the recharge as its refunded_amount_minor, under the card
 * lock); the card must still hold the money.
 */
async function applyRechargeReversal(trx: Knex.Transaction, op: OperationRecord, _deps: Deps, read: Read): Promise<Applied> {
  const [card] = op.card_id ? await read<LockedCard & { tx_no: string }>(lockCardWithTxNo(op.card_id, 'recharge_reversal')) : [];
  const recharge = card && op.original_tx_no ? await lockRechargeForReversal(read, op.original_tx_no, card.id) : undefined;
  const plan = decideRechargeReversal({ card, recharge }, { amountMinor: amountOf(op) });
  if (isRefusal(plan)) throw new AppError(plan.refused, plan.message, plan.details);
  const reversed = card!;
  const original = recharge!;
  const tx = {
    id: randomUUID(),
    tx_no: reversed.tx_no,
    type: 'recharge_reversal' as const,
    operation_id: op.id,
    card_id: reversed.id,
    member_id: original.member_id,
    merchant_id: null,
    original_tx_id: original.id,
    raw_amount_minor: plan.amountMinor,
    final_amount_minor: plan.amountMinor,
    via_balance: true,
    payment_method: original.payment_method,
    reason: op.params.reason ?? null,
  };
  const { statements: cardWrites } = cardChange(trx, reversed, { transactionId: tx.id, balance: { delta: plan.balanceDeltaMinor, reason: 'recharge_reversal' } });
  const result = { tx_no: tx.tx_no, card_id: reversed.id, original_tx_no: original.tx_no, amount: formatMinor(plan.amountMinor), balance: formatMinor(plan.balanceAfterMinor) };
  return {
    writes: [transactionInsert(trx, tx), ...cardWrites, refundOnPayment(trx, original.id, { refunded: plan.amountMinor, clawed: 0, status: plan.rechargeStatusAfter })],
    result,
    event: { merchantId: null, type: 'recharge_reversal.succeeded', data: { ...result, reason: tx.reason } },
    audit: {
      action: 'recharge_reversal.succeeded',
      objectType: 'transaction',
      objectId: tx.tx_no,
      context: { operation_id: op.id, card_id: reversed.id, original_tx_no: original.tx_no, amount_minor: plan.amountMinor, reversed_total_minor: plan.reversedTotalMinor, reason: tx.reason },
    },
  };
}

/** POST /v1/cards/:id/recharge-reversals (admin): the provider charged a recharge back. */
export const rechargeReversal = defineKind({
  type: 'recharge_reversal',
  http: {
    path: '/cards/:id/recharge-reversals',
    roles: ['admin'],
    body: z.strictObject({
      original_tx_no: z.string().min(1).max(40),
      amount: fields.amount,
      reason: fields.text(500),
    }),
  },
  card: 'request',
  async draft({ config, cardFor }, { params, body }) {
    // Within what the recharge credited (judged by the worker); a voucher's face value may be up to MAX_AMOUNT.
    const amount = parseAmount(body.amount, config.MAX_AMOUNT);
    const { card } = await cardFor(params.id!, 'manage');
    return {
      ...cardDraft('recharge_reversal', card.id),
      amount_minor: amount,
      original_tx_no: body.original_tx_no,
      params: { reason: body.reason },
    };
  },
  apply: applyRechargeReversal,
  refusals: RECHARGE_REVERSAL_REFUSALS,
  events: { succeeded: 'recharge_reversal.succeeded', failed: 'recharge_reversal.failed' },
  transactionTypes: ['recharge_reversal'],
  balanceReasons: ['recharge_reversal'],
  pointReasons: [],
});
