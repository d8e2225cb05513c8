import { randomUUID } from 'node:crypto';
import type { Knex } from 'knex';
import { z } from 'zod';
import type { Deps } from '../app/deps.js';
import { CARD_CLOSE_REFUSALS, decideCardClose } from '../domain/decide-card-close.js';
import { isRefusal } from '../domain/decision.js';
import { AppError } from '../domain/errors.js';
import { formatMinor } from '../domain/money.js';
import { fields } from '../domain/validate.js';
import type { Read } from '../db/knex.js';
import { cardChange } from '../db/queries/ledgers.js';
import { lockCardWith, type LockedCardWith } from '../db/queries/member-cards.js';
import { moneyInFlightSql, type OperationRecord } from '../db/queries/operations.js';
import { qrEnd } from '../db/queries/qr.js';
import { nextTxNoSql, payoutReferenceUsedSql, transactionInsert } from '../db/queries/transactions.js';
import { cardDraft, defineKind, type Applied } from './kind.js';
import { EXTERNAL_METHODS } from './payment.js';

type ClosedCard = LockedCardWith<'in_flight' | 'reference_used' | 'tx_no'>;

/**
 * An admin closes a card and pays out its balance (DESIGN.md "Operator tools"): the balance leaves
 * as a `payout` transaction with the method and reference of the money paid, and a balance_ledger
 * row; the card is `closed` and its QR tokens end. A closed card refuses everything after.
 */
async function applyClose(trx: Knex.Transaction, op: OperationRecord, _deps: Deps, read: Read): Promise<Applied> {
  const method = op.params.payout_method as string;
  const reference = op.params.payout_reference as string;
  const [card] = op.card_id
    ? await read<ClosedCard>(
        lockCardWith(op.card_id, {
          in_flight: { sql: moneyInFlightSql, bindings: [op.card_id] },
          reference_used: { sql: payoutReferenceUsedSql, bindings: [method, reference] },
          tx_no: { sql: nextTxNoSql('payout'), bindings: [] },
        }),
      )
    : [];
  const plan = decideCardClose({ card, moneyInFlight: card?.in_flight === true, referenceUsed: card?.reference_used === true });
  if (isRefusal(plan)) throw new AppError(plan.refused, plan.message, plan.details);
  const closed = card!;
  const payout = plan.payoutMinor
    ? {
        id: randomUUID(),
        tx_no: closed.tx_no as string,
        type: 'payout' as const,
        operation_id: op.id,
        card_id: closed.id,
        member_id: closed.owner_member_id,
        raw_amount_minor: plan.payoutMinor,
        final_amount_minor: plan.payoutMinor,
        via_balance: true,
        payment_method: method,
        payment_reference: reference,
        reason: op.params.reason ?? null,
      }
    : undefined;
  const { statements } = cardChange(trx, closed, {
    transactionId: payout?.id,
    balance: payout ? { delta: plan.balanceDeltaMinor, reason: 'payout' } : undefined,
    status: 'closed',
  });
  const result = { tx_no: payout?.tx_no ?? null, payout_amount: formatMinor(plan.payoutMinor), card_id: closed.id };
  return {
    writes: [...(payout ? [transactionInsert(trx, payout)] : []), ...statements, ...qrEnd(trx, closed.id, 'revoked')],
    result,
    event: { merchantId: null, type: 'card_close.succeeded', data: { ...result, payout_method: method } },
    audit: {
      action: 'card_close.succeeded',
      objectType: 'card',
      objectId: closed.id,
      context: { operation_id: op.id, payout_minor: plan.payoutMinor, payout_method: method, payout_reference: reference, reason: op.params.reason },
    },
  };
}

/** POST /v1/cards/:id/close (admin): pay out the balance and close the card. */
export const cardClose = defineKind({
  type: 'card_close',
  http: {
    path: '/cards/:id/close',
    roles: ['admin'],
    body: z.strictObject({
      payout_method: z.enum([...EXTERNAL_METHODS, 'bank_transfer']),
      payout_reference: fields.text(200),
      reason: fields.text(500),
    }),
  },
  card: 'request',
  async draft({ cardFor }, { params, body }) {
    const { card } = await cardFor(params.id!, 'manage');
    return {
      ...cardDraft('card_close', card.id),
      params: { payout_method: body.payout_method, payout_reference: body.payout_reference, reason: body.reason },
    };
  },
  apply: applyClose,
  refusals: CARD_CLOSE_REFUSALS,
  events: { succeeded: 'card_close.succeeded', failed: 'card_close.failed' },
  transactionTypes: ['payout'],
  balanceReasons: ['payout'],
  pointReasons: [],
});
