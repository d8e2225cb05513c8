import { randomUUID } from 'node:crypto';
import type { Knex } from 'knex';
import { z } from 'zod';
import type { Deps } from '../app/deps.js';
import { CARD_REPLACEMENT_REFUSALS, decideCardReplacement } from '../domain/decide-card-replacement.js';
import { isRefusal } from '../domain/decision.js';
import { AppError, forbidden } from '../domain/errors.js';
import { formatMinor } from '../domain/money.js';
import type { Read } from '../db/knex.js';
import { moveBindings } from '../db/queries/bindings.js';
import { cardChange, openingLedger } from '../db/queries/ledgers.js';
import { lockCardWith, newCardNoLikeSql, replacementCardInsert, type LockedCardWith } from '../db/queries/member-cards.js';
import { moneyInFlightSql, type OperationRecord } from '../db/queries/operations.js';
import { qrEnd } from '../db/queries/qr.js';
import { nextTxNoSql, transactionInsert } from '../db/queries/transactions.js';
import { cardDraft, defineKind, type Applied } from './kind.js';

type ReplacedCard = LockedCardWith<'in_flight' | 'new_card_no' | 'debit_tx_no' | 'credit_tx_no'>;

/**
 * A card replacement (lost, damaged): one operation, on the old card's partition, that creates the
 * new card and moves everything to it — balance (a transfer_debit on the old card and a
 * transfer_credit on the new, so balance = Σ ledger holds for each), points (point rows on both),
 * level and bindings — closes the old card (replaced_by) and ends its QR tokens.
 *
 * The new card's id decides its partition (partitionOf), usually another one; its first writes
 * happen here, under the old card's. That is safe: until this transaction commits nobody can know
 * the new card's id, so no operation of it can be accepted, queued or running on its partition,
 * and no lock of it is held or awaited there. Its later operations all run on its own partition.
 */
async function applyReplacement(trx: Knex.Transaction, op: OperationRecord, _deps: Deps, read: Read): Promise<Applied> {
  const [card] = op.card_id
    ? await read<ReplacedCard>(
        lockCardWith(op.card_id, {
          in_flight: { sql: moneyInFlightSql, bindings: [op.card_id] },
          new_card_no: { sql: newCardNoLikeSql, bindings: [] },
          debit_tx_no: { sql: nextTxNoSql('transfer_debit'), bindings: [] },
          credit_tx_no: { sql: nextTxNoSql('transfer_credit'), bindings: [] },
        }),
      )
    : [];
  const plan = decideCardReplacement({ card, ownerStatus: card?.owner_status ?? null, moneyInFlight: card?.in_flight === true });
  if (isRefusal(plan)) throw new AppError(plan.refused, plan.message, plan.details);
  const old = card!;
  const newCard = { id: randomUUID(), card_no: old.new_card_no as string, balance_minor: plan.balanceMinor, points: plan.points, level: plan.level, status: plan.newStatus };
  const reason = 'card_replacement';
  const txs = [];
  let debitTx: string | undefined;
  let creditTx: string | undefined;
  if (plan.balanceMinor) {
    const common = { operation_id: op.id, member_id: old.owner_member_id, raw_amount_minor: plan.balanceMinor, final_amount_minor: plan.balanceMinor, via_balance: true, reason: `card replaced: ${op.params.reason}` };
    const debit = { ...common, id: randomUUID(), tx_no: old.debit_tx_no as string, type: 'transfer_debit' as const, card_id: old.id };
    const credit = { ...common, id: randomUUID(), tx_no: old.credit_tx_no as string, type: 'transfer_credit' as const, card_id: newCard.id };
    txs.push(transactionInsert(trx, debit), transactionInsert(trx, credit));
    [debitTx, creditTx] = [debit.id, credit.id];
  }
  const moved = { balance: plan.balanceMinor, points: plan.points };
  const writes = [
    // The old card closes in the same statement as the new one is inserted (a member's one open standard card is checked at commit).
    ...cardChange(trx, old, {
      transactionId: debitTx,
      balance: moved.balance ? { delta: -moved.balance, reason } : undefined,
      points: moved.points ? { delta: -moved.points, reason } : undefined,
      pointsWithoutTransaction: true,
      status: 'closed',
      replacedBy: newCard.id,
    }).statements,
    replacementCardInsert(trx, old, newCard),
    ...txs,
    ...openingLedger(trx, newCard.id, { transactionId: creditTx, balance: { delta: moved.balance, reason }, points: { delta: moved.points, reason }, pointsWithoutTransaction: true }),
    ...moveBindings(trx, old.id, newCard.id, old.owner_member_id),
    ...qrEnd(trx, old.id, 'revoked'),
  ];
  const result = {
    old_card_id: old.id,
    new_card: { id: newCard.id, card_no: newCard.card_no, balance: formatMinor(newCard.balance_minor), points: newCard.points, level: newCard.level },
  };
  return {
    writes,
    result,
    event: { merchantId: null, type: 'card_replacement.succeeded', data: { old_card_id: old.id, new_card_id: newCard.id, reason: op.params.reason } },
    audit: { action: 'card_replacement.succeeded', objectType: 'card', objectId: old.id, context: { operation_id: op.id, new_card_id: newCard.id, balance_minor: moved.balance, points: moved.points, reason: op.params.reason } },
  };
}

/** POST /v1/cards/:id/replace: a lost or damaged card gives way to a new card number. */
export const cardReplacement = defineKind({
  type: 'card_replacement',
  http: {
    path: '/cards/:id/replace',
    roles: ['admin', 'app', 'member'],
    body: z.strictObject({ reason: z.enum(['lost', 'damaged', 'other']) }),
  },
  card: 'request',
  async draft({ principal, cardFor }, { params, body }) {
    const { card, bindingRole } = await cardFor(params.id!, 'manage');
    if (principal.role === 'member' && bindingRole !== 'owner') throw forbidden('Only the card owner may replace it');
    return {
      ...cardDraft('card_replacement', card.id),
      member_id: principal.memberId,
      params: { reason: body.reason },
    };
  },
  apply: applyReplacement,
  refusals: CARD_REPLACEMENT_REFUSALS,
  events: { succeeded: 'card_replacement.succeeded', failed: 'card_replacement.failed' },
  transactionTypes: ['transfer_debit', 'transfer_credit'],
  balanceReasons: ['card_replacement'],
  pointReasons: ['card_replacement'],
});
