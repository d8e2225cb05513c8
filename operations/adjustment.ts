import { randomUUID } from 'node:crypto';
import type { Knex } from 'knex';
import { z } from 'zod';
import type { Deps } from '../app/deps.js';
import { ADJUSTMENT_REFUSALS, adjustmentNeedsApproval, decideAdjustment } from '../domain/decide-adjustment.js';
import { isRefusal } from '../domain/decision.js';
import { AppError } from '../domain/errors.js';
import { formatMinor, parseSignedAmount } from '../domain/money.js';
import { fields } from '../domain/validate.js';
import { cardChange } from '../db/queries/ledgers.js';
import type { LockedCard } from '../db/queries/member-cards.js';
import type { Read } from '../db/knex.js';
import type { OperationRecord } from '../db/queries/operations.js';
import { lockCardWithTxNo, transactionInsert } from '../db/queries/transactions.js';
import { amountOf, cardDraft, defineKind, type Applied } from './kind.js';

/**
 * A balance correction by an operator: the signed amount moves the balance (never below 0, never
 * above MAX_BALANCE), with a transaction `adjustment` that carries the signed amount and the reason,
 * and a ledger row `adjustment`.
 */
async function applyAdjustment(trx: Knex.Transaction, op: OperationRecord, deps: Deps, read: Read): Promise<Applied> {
  const [card] = op.card_id ? await read<LockedCard & { tx_no: string }>(lockCardWithTxNo(op.card_id, 'adjustment')) : [];
  const plan = decideAdjustment({ card }, { amountMinor: amountOf(op) }, { maxBalanceMinor: deps.config.MAX_BALANCE });
  if (isRefusal(plan)) throw new AppError(plan.refused, plan.message, plan.details);
  const adjusted = card!;
  const tx = {
    id: randomUUID(),
    tx_no: adjusted.tx_no,
    type: 'adjustment' as const,
    operation_id: op.id,
    card_id: adjusted.id,
    member_id: adjusted.owner_member_id,
    merchant_id: null,
    // Signed, as asked: a debit reads "-25.00" in the card's history.
    raw_amount_minor: plan.deltaMinor,
    final_amount_minor: plan.deltaMinor,
    via_balance: true,
    payment_method: null,
    reason: op.params.reason ?? null,
  };
  const { statements: cardWrites } = cardChange(trx, adjusted, { transactionId: tx.id, balance: { delta: plan.deltaMinor, reason: 'adjustment' } });
  const result = { tx_no: tx.tx_no, card_id: adjusted.id, amount: formatMinor(plan.deltaMinor), balance: formatMinor(plan.balanceAfterMinor) };
  return {
    writes: [transactionInsert(trx, tx), ...cardWrites],
    result,
    event: { merchantId: null, type: 'adjustment.succeeded', data: { ...result, reason: tx.reason } },
    audit: { action: 'adjustment.succeeded', objectType: 'transaction', objectId: tx.tx_no, context: { operation_id: op.id, card_id: adjusted.id, amount_minor: plan.deltaMinor, reason: tx.reason } },
  };
}

/**
 * POST /v1/cards/:id/adjustments (admin): a signed correction with its reason. One larger than
 * ADJUSTMENT_APPROVAL_OVER either way waits in `requires_approval` until another admin key
 * approves it (POST /v1/operations/:id/approve) or rejects it.
 */
export const adjustment = defineKind({
  type: 'adjustment',
  http: {
    path: '/cards/:id/adjustments',
    roles: ['admin'],
    body: z.strictObject({
      amount: fields.amount,
      reason: fields.text(500),
    }),
  },
  card: 'request',
  async draft({ config, cardFor }, { params, body }) {
    const amount = parseSignedAmount(body.amount, config.MAX_AMOUNT);
    const { card } = await cardFor(params.id!, 'manage');
    return {
      ...cardDraft('adjustment', card.id),
      amount_minor: amount,
      params: { reason: body.reason },
    };
  },
  needsApproval: (draft, config) => draft.amount_minor !== null && adjustmentNeedsApproval(draft.amount_minor, config.ADJUSTMENT_APPROVAL_OVER),
  apply: applyAdjustment,
  refusals: ADJUSTMENT_REFUSALS,
  events: { succeeded: 'adjustment.succeeded', failed: 'adjustment.failed' },
  transactionTypes: ['adjustment'],
  balanceReasons: ['adjustment'],
  pointReasons: [],
});
