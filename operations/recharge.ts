import { randomUUID } from 'node:crypto';
import type { Knex } from 'knex';
import { z } from 'zod';
import type { Deps } from '../app/deps.js';
import { decideRecharge, RECHARGE_REFUSALS, rechargeNotAllowed } from '../domain/decide-recharge.js';
import { AppError } from '../domain/errors.js';
import { formatMinor, parseAmount } from '../domain/money.js';
import { fieldError, fields } from '../domain/validate.js';
import { isRefusal } from '../domain/decision.js';
import { cardChange } from '../db/queries/ledgers.js';
import { lockCardStatement, type LockedCard } from '../db/queries/member-cards.js';
import type { Read } from '../db/knex.js';
import type { OperationRecord } from '../db/queries/operations.js';
import { nextTxNoSql, transactionInsert } from '../db/queries/transactions.js';
import { defineKind, type Applied } from './kind.js';
import { EXTERNAL_METHODS } from './payment.js';

/** A recharge (DESIGN.md §2): prepaid and corporate only, resulting balance within MAX_BALANCE, no points. */
async function applyRecharge(trx: Knex.Transaction, op: OperationRecord, deps: Deps, read: Read): Promise<Applied> {
  const [card] = op.card_id ? await read<LockedCard>(lockCardStatement(op.card_id)) : [];
  const notAllowed = rechargeNotAllowed(card);
  if (notAllowed || !card) throw new AppError(notAllowed!.refused, notAllowed!.message);
  // Who is involved, and the recharge's number (reserved here; a refused recharge leaves a gap).
  const [parties] = (await read<{ owner_status: string; actor_status: string | null; tx_no: string }>({
    sql: `SELECT (SELECT status FROM member_profiles WHERE id = ?) AS owner_status,
                 (SELECT status FROM member_profiles WHERE id = ?) AS actor_status,
                 ${nextTxNoSql('recharge')} AS tx_no`,
    bindings: [card.owner_member_id, op.member_id],
  })) as [{ owner_status: string; actor_status: string | null; tx_no: string }];
  // An actor without a profile is no actor: only the owner is then checked, as always.
  const plan = decideRecharge({ card, ownerStatus: parties.owner_status, actorStatus: parties.actor_status ?? undefined }, { amountMinor: op.amount_minor }, { maxBalanceMinor: deps.config.MAX_BALANCE });
  if (isRefusal(plan)) throw new AppError(plan.refused, plan.message, plan.details);
  const tx = {
    id: randomUUID(),
    tx_no: parties.tx_no,
    type: 'recharge' as const,
    operation_id: op.id,
    card_id: card.id,
    member_id: op.member_id ?? card.owner_member_id,
    raw_amount_minor: plan.amountMinor,
    final_amount_minor: plan.amountMinor,
    via_balance: true,
    payment_method: op.payment_method,
    tag: op.params.tag ?? null,
  };
  const { statements: cardWrites } = cardChange(trx, card, { transactionId: tx.id, balance: { delta: plan.balanceDeltaMinor, reason: 'recharge' } });
  const result = { tx_no: tx.tx_no, card_id: card.id, amount: formatMinor(plan.amountMinor), balance: formatMinor(plan.balanceAfterMinor) };
  return {
    writes: [transactionInsert(trx, tx), ...cardWrites],
    result,
    event: { merchantId: null, type: 'recharge.succeeded', data: { tx_no: tx.tx_no, card_id: card.id, amount: result.amount } },
    audit: { action: 'recharge.succeeded', objectType: 'transaction', objectId: tx.tx_no, context: { operation_id: op.id, card_id: card.id, amount_minor: op.amount_minor } },
  };
}

/**
 * POST /v1/cards/:id/recharges. Stored value is credited only against money received: the
 * member-app backend after its payment provider confirmed (payment_reference, once per method),
 * or an admin. A member token alone cannot credit its own card.
 */
export const recharge = defineKind({
  type: 'recharge',
  http: {
    path: '/cards/:id/recharges',
    roles: ['app', 'admin'],
    body: z.strictObject({
      amount: fields.amount,
      payment_method: z.enum([...EXTERNAL_METHODS, 'bank_transfer']),
      payment_reference: z.string().trim().min(1).max(200).optional(),
      tag: fields.tag.optional(),
    }),
  },
  card: 'request',
  async draft({ config, principal, cardFor }, { params, body }) {
    if (principal.role === 'app' && body.payment_reference === undefined) throw fieldError('payment_reference', "is required for app keys: the payment provider's id of the money received");
    const amount = parseAmount(body.amount, config.MAX_RECHARGE);
    const { card } = await cardFor(params.id!, 'pay');
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
  },
  apply: applyRecharge,
  refusals: RECHARGE_REFUSALS,
  events: { succeeded: 'recharge.succeeded' },
  transactionTypes: ['recharge'],
  balanceReasons: ['recharge'],
  pointReasons: [],
});
