import { randomUUID } from 'node:crypto';
import type { Knex } from 'knex';
import { z } from 'zod';
import type { Deps } from '../app/deps.js';
import { isRefusal } from '../domain/decision.js';
import {
  decideTransferCredit,
  decideTransferDebit,
  decideTransferEnd,
  TRANSFER_CREDIT_REFUSALS,
  TRANSFER_DEBIT_REFUSALS,
  type CreditOutcome,
} from '../domain/decide-transfer.js';
import { isRechargeable } from '../domain/discount.js';
import { AppError, forbidden, type ErrorCode } from '../domain/errors.js';
import { formatMinor, parseAmount } from '../domain/money.js';
import { fieldError, fields } from '../domain/validate.js';
import type { Read } from '../db/knex.js';
import { cardChange, type BalanceReason } from '../db/queries/ledgers.js';
import { lockCardWith, type LockedCardWith } from '../db/queries/member-cards.js';
import { lockOperationStatement, type Ending, type OperationRecord } from '../db/queries/operations.js';
import { nextTxNoSql, transactionInsert } from '../db/queries/transactions.js';
import { amountOf, cardDraft, defineInternalKind, defineKind, type Applied, type FollowUp } from './kind.js';

/**
 * A transfer between two cards (API.md "Operator money tools") runs as three operations, each on
 * its own card's partition, each in one transaction that locks only that card:
 *
 *   transfer         (source partition)       debits the source (transfer_debit), hands on to
 *                                              the credit, and stays processing (continued)
 *   transfer_credit  (destination partition)  credits the destination (transfer_credit), or is
 *                                              refused (closed, frozen, limit…); either way hands on
 *   transfer_end     (source partition)       hands the money back if the credit was refused (a
 *                                              transfer_credit on the source), and ends the transfer
 *                                              with its one outcome
 *
 * Each leg's row is inserted by the transaction of the leg before it (so it exists exactly when
 * that leg committed) and applied effectively once like any operation; no transaction holds a
 * lock of the other partition, and the client's operation ends exactly once (docs/reliability.md
 * "Transfers").
 */

/** What a leg carries from the one before it. */
interface LegParams {
  from_card_id: string;
  to_card_id: string;
  debit_tx_no: string;
}

type EndParams = LegParams & { credit: CreditOutcome & { credit_tx_no?: string } };

const txNo = (type: 'transfer_debit' | 'transfer_credit') => ({ tx_no: { sql: nextTxNoSql(type), bindings: [] } });

/**
 * A leg's money on one card: its transaction row (the whole `amount`, by balance, under the number
 * the card was locked with) and the card's balance change with its ledger row.
 */
function legMove(
  trx: Knex.Transaction,
  op: OperationRecord,
  card: LockedCardWith<'tx_no'>,
  move: { type: 'transfer_debit' | 'transfer_credit'; amount: number; delta: number; reason: BalanceReason; tag?: Record<string, unknown> | null; note?: string },
) {
  const tx = {
    id: randomUUID(),
    tx_no: card.tx_no as string,
    type: move.type,
    operation_id: op.id,
    card_id: card.id,
    member_id: op.member_id ?? card.owner_member_id,
    raw_amount_minor: move.amount,
    final_amount_minor: move.amount,
    via_balance: true,
    ...(move.tag !== undefined ? { tag: move.tag } : {}),
    ...(move.note !== undefined ? { reason: move.note } : {}),
  };
  const { statements } = cardChange(trx, card, { transactionId: tx.id, balance: { delta: move.delta, reason: move.reason } });
  return { txNo: tx.tx_no, writes: [transactionInsert(trx, tx), ...statements] };
}

/** The source's debit: the first leg, on the source card's partition. */
async function applyTransfer(trx: Knex.Transaction, op: OperationRecord, _deps: Deps, read: Read): Promise<Applied> {
  const amount = amountOf(op);
  const toCardId = op.params.to_card_id as string;
  const [card] = op.card_id ? await read<LockedCardWith<'tx_no'>>(lockCardWith(op.card_id, txNo('transfer_debit'))) : [];
  const plan = decideTransferDebit({ card, ownerStatus: card?.owner_status ?? null }, { amountMinor: amount });
  if (isRefusal(plan)) throw new AppError(plan.refused, plan.message, plan.details);
  const source = card!;
  const debit = legMove(trx, op, source, { type: 'transfer_debit', amount, delta: plan.balanceDeltaMinor, reason: 'transfer_debit', tag: op.params.tag ?? null });
  const params: LegParams = { from_card_id: source.id, to_card_id: toCardId, debit_tx_no: debit.txNo };
  return {
    continues: true,
    writes: debit.writes,
    followUps: [{ id: `${op.id}-credit`, type: 'transfer_credit', card_id: toCardId, amount_minor: amount, params: { ...params } }],
    audit: { action: 'transfer.debited', objectType: 'transaction', objectId: debit.txNo, context: { operation_id: op.id, ...params, amount_minor: amount } },
  };
}

/** The last leg, on the source's partition, told how the credit ended. */
function endLeg(op: OperationRecord, credit: EndParams['credit']): FollowUp {
  const { from_card_id, to_card_id, debit_tx_no } = op.params as unknown as LegParams;
  const params: EndParams = { from_card_id, to_card_id, debit_tx_no, credit };
  return { id: `${op.parent_id}-end`, type: 'transfer_end', card_id: from_card_id, amount_minor: op.amount_minor, params: { ...params } };
}

/** The destination's credit: the second leg, on the destination card's partition. A refusal hands the money back (followUpsOnRefusal). */
async function applyTransferCredit(trx: Knex.Transaction, op: OperationRecord, deps: Deps, read: Read): Promise<Applied> {
  const amount = amountOf(op);
  const [card] = op.card_id ? await read<LockedCardWith<'tx_no'>>(lockCardWith(op.card_id, txNo('transfer_credit'))) : [];
  const plan = decideTransferCredit({ card, ownerStatus: card?.owner_status ?? null }, { amountMinor: amount }, { maxBalanceMinor: deps.config.MAX_BALANCE });
  if (isRefusal(plan)) throw new AppError(plan.refused, plan.message, plan.details);
  const destination = card!;
  const credit = legMove(trx, op, destination, { type: 'transfer_credit', amount, delta: plan.balanceDeltaMinor, reason: 'transfer_credit' });
  return {
    writes: credit.writes,
    result: { credit_tx_no: credit.txNo, card_id: destination.id, balance: formatMinor(plan.balanceAfterMinor) },
    followUps: [endLeg(op, { credited: true, credit_tx_no: credit.txNo })],
    audit: { action: 'transfer_credit.succeeded', objectType: 'transaction', objectId: credit.txNo, context: { operation_id: op.id, transfer_id: op.parent_id, amount_minor: amount } },
  };
}

/** The end, on the source's partition: the money back if the credit was refused, and the transfer's one outcome. */
async function applyTransferEnd(trx: Knex.Transaction, op: OperationRecord, _deps: Deps, read: Read): Promise<Applied> {
  const amount = amountOf(op);
  const { from_card_id, to_card_id, debit_tx_no, credit } = op.params as unknown as EndParams;
  // The transfer's row is of this partition (it ran on the source's): locked here, never from the destination's.
  const [transfer] = op.parent_id ? await read<OperationRecord>(lockOperationStatement(op.parent_id)) : [];
  if (!transfer) throw new Error(`transfer_end ${op.id}: no transfer ${op.parent_id}`);
  const end = decideTransferEnd(credit, amount);
  const writes = [];
  let returnTxNo: string | null = null;
  if (end.returnMinor) {
    const [source] = await read<LockedCardWith<'tx_no'>>(lockCardWith(from_card_id, txNo('transfer_credit')));
    if (!source) throw new Error(`transfer_end ${op.id}: no source card ${from_card_id}`);
    const back = legMove(trx, op, source, {
      type: 'transfer_credit',
      amount: end.returnMinor,
      delta: end.returnMinor,
      reason: 'transfer_return',
      note: `transfer ${transfer.id} returned: ${end.outcome.status === 'failed' ? end.outcome.code : ''}`,
    });
    writes.push(...back.writes);
    returnTxNo = back.txNo;
  }
  const moved = { amount: formatMinor(amount), from_card_id, to_card_id, debit_tx_no };
  const outcome: Ending =
    end.outcome.status === 'succeeded'
      ? { status: 'succeeded', result: { ...moved, credit_tx_no: credit.credit_tx_no } }
      : { status: 'failed', code: end.outcome.code, message: end.outcome.message };
  const event =
    outcome.status === 'succeeded'
      ? { merchantId: null, type: 'transfer.succeeded', data: outcome.result }
      : { merchantId: null, type: 'transfer.failed', data: { ...moved, return_tx_no: returnTxNo, error: { code: outcome.code, message: outcome.message } } };
  return {
    writes,
    result: { transfer_id: transfer.id, outcome: outcome.status, return_tx_no: returnTxNo },
    ends: { op: transfer, outcome, event },
    audit: {
      action: `transfer.${outcome.status}`,
      objectType: 'operation',
      objectId: transfer.id,
      context: { operation_id: transfer.id, leg_operation_id: op.id, ...moved, credit_tx_no: credit.credit_tx_no ?? null, return_tx_no: returnTxNo, code: outcome.status === 'failed' ? outcome.code : null },
    },
  };
}

/** POST /v1/transfers: money from one card to another, each card moved on its own partition. */
export const transfer = defineKind({
  type: 'transfer',
  http: {
    path: '/transfers',
    roles: ['admin', 'app', 'member'],
    // Card ids as the card routes take them (any 8-4-4-4-12 hex id, services/card-access.ts), not only RFC 4122 variants.
    body: z.strictObject({ from_card_id: z.guid(), to_card_id: z.guid(), amount: fields.amount, tag: fields.tag.optional() }),
  },
  card: 'request',
  async draft({ config, principal, cardFor }, { body }) {
    const [from, to] = [body.from_card_id.toLowerCase(), body.to_card_id.toLowerCase()];
    if (from === to) throw fieldError('to_card_id', 'must be another card than from_card_id');
    const amount = parseAmount(body.amount, config.MAX_AMOUNT);
    // A member moves money only between cards it owns (another member's card is 404, as everywhere);
    // an app only between cards of one owner; an admin between any two.
    const source = await cardFor(from, 'manage');
    const destination = await cardFor(to, 'read');
    if (principal.role === 'member' && (source.bindingRole !== 'owner' || destination.bindingRole !== 'owner')) throw forbidden('A member transfers only between cards it owns');
    if (principal.role !== 'admin' && source.card.owner_member_id !== destination.card.owner_member_id) throw forbidden('Transfers between cards of different owners are for admin keys');
    for (const card of [source.card, destination.card]) {
      if (!isRechargeable(card.type)) throw new AppError('UNPROCESSABLE', 'Only prepaid and corporate cards take part in transfers', { card_id: card.id, type: card.type });
    }
    return {
      ...cardDraft('transfer', source.card.id),
      member_id: principal.memberId,
      amount_minor: amount,
      params: { to_card_id: destination.card.id, tag: body.tag },
    };
  },
  apply: applyTransfer,
  refusals: TRANSFER_DEBIT_REFUSALS,
  events: { succeeded: 'transfer.succeeded', failed: 'transfer.failed' },
  transactionTypes: ['transfer_debit'],
  balanceReasons: ['transfer_debit'],
  pointReasons: [],
});

/** A transfer's credit of the destination (internal: the transfer hands on to it). */
export const transferCredit = defineInternalKind({
  type: 'transfer_credit',
  apply: applyTransferCredit,
  refusals: TRANSFER_CREDIT_REFUSALS,
  // Refused (or out of attempts: INTERNAL_ERROR), the credit still hands on: the end returns the money.
  followUpsOnRefusal: (op, code: ErrorCode, message) => [endLeg(op, { credited: false, code, message })],
  transactionTypes: ['transfer_credit'],
  balanceReasons: ['transfer_credit'],
  pointReasons: [],
});

/** A transfer's end on the source (internal). It never gives up: the money it may return is already off the source. */
export const transferEnd = defineInternalKind({
  type: 'transfer_end',
  apply: applyTransferEnd,
  refusals: [],
  giveUp: 'never',
  transactionTypes: ['transfer_credit'],
  balanceReasons: ['transfer_return'],
  pointReasons: [],
});
