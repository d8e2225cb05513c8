import { randomUUID } from 'node:crypto';
import type { Knex } from 'knex';
import { z } from 'zod';
import type { Deps } from '../app/deps.js';
import { decideRecharge, RECHARGE_REFUSALS, rechargeNotAllowed } from '../domain/decide-recharge.js';
import { AppError } from '../domain/errors.js';
import { maskCardNo } from '../domain/masking.js';
import { formatMinor, parseAmount } from '../domain/money.js';
import { sha256 } from '../domain/tokens.js';
import { fieldError, fields } from '../domain/validate.js';
import { isRefusal } from '../domain/decision.js';
import { cardChange } from '../db/queries/ledgers.js';
import { lockCardStatement, type LockedCard, type MemberCardRow } from '../db/queries/member-cards.js';
import type { Read } from '../db/knex.js';
import type { OperationRecord } from '../db/queries/operations.js';
import { cardWithQrSql, type QrParties } from '../db/queries/qr.js';
import { nextTxNoSql, transactionInsert } from '../db/queries/transactions.js';
import { amountOf, cardDraft, defineKind, defineRoute, type Applied } from './kind.js';
import { EXTERNAL_METHODS } from './payment.js';

/** The card of a top-up at the till, locked, with the presented QR (not locked: a top-up does not consume it) and who is involved. */
type TillRows = LockedCard & QrParties & { tx_no: string };

/**
 * A recharge (DESIGN.md §2): prepaid and corporate only, resulting balance within MAX_BALANCE, no
 * points. At the till (an operation with the member's QR and the merchant) the QR, the merchant
 * and the presenting member are judged too, as for a charge, and the merchant hears of it.
 */
async function applyRecharge(trx: Knex.Transaction, op: OperationRecord, deps: Deps, read: Read): Promise<Applied> {
  const atTill = op.qr_token_hash !== null;
  const { card, plan, txNo } = atTill ? await decideAtTill(trx, op, deps, read) : await decideByCard(op, deps, read);
  const tx = {
    id: randomUUID(),
    tx_no: txNo,
    type: 'recharge' as const,
    operation_id: op.id,
    card_id: card.id,
    member_id: op.member_id ?? card.owner_member_id,
    merchant_id: op.merchant_id,
    raw_amount_minor: plan.amountMinor,
    final_amount_minor: plan.amountMinor,
    via_balance: true,
    payment_method: op.payment_method,
    tag: op.params.tag ?? null,
  };
  const { statements: cardWrites } = cardChange(trx, card, { transactionId: tx.id, balance: { delta: plan.balanceDeltaMinor, reason: 'recharge' } });
  const amount = formatMinor(plan.amountMinor);
  const balance = formatMinor(plan.balanceAfterMinor);
  // The merchant sees the card masked only, as in a payment's result; the member's side sees its id.
  const masked = { card_no: maskCardNo(card.card_no), type: card.type, level: card.level };
  const result = atTill ? { tx_no: tx.tx_no, amount, balance, payment_method: tx.payment_method, card: masked } : { tx_no: tx.tx_no, card_id: card.id, amount, balance };
  const eventData = atTill ? { tx_no: tx.tx_no, amount, payment_method: tx.payment_method, card: masked, tag: tx.tag } : { tx_no: tx.tx_no, card_id: card.id, amount };
  return {
    writes: [transactionInsert(trx, tx), ...cardWrites],
    result,
    event: { merchantId: op.merchant_id, type: 'recharge.succeeded', data: eventData },
    audit: { action: 'recharge.succeeded', objectType: 'transaction', objectId: tx.tx_no, context: { operation_id: op.id, card_id: card.id, amount_minor: op.amount_minor, merchant_id: op.merchant_id } },
  };
}

/** A recharge of a card named by id (app or admin key). */
async function decideByCard(op: OperationRecord, deps: Deps, read: Read) {
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
  const plan = decideRecharge({ card, ownerStatus: parties.owner_status, actorStatus: parties.actor_status ?? undefined }, { amountMinor: amountOf(op) }, { maxBalanceMinor: deps.config.MAX_BALANCE });
  if (isRefusal(plan)) throw new AppError(plan.refused, plan.message, plan.details);
  return { card: card as MemberCardRow, plan, txNo: parties.tx_no };
}

/** A top-up at the till: the card of the presented QR, all read in one round trip. */
async function decideAtTill(trx: Knex.Transaction, op: OperationRecord, deps: Deps, read: Read) {
  const [rows] = op.card_id
    ? await read<TillRows>(
        trx.raw(cardWithQrSql({ lockQr: false, columns: `${nextTxNoSql('recharge')} AS tx_no` }), { card: op.card_id, merchant: op.merchant_id, hash: op.qr_token_hash }).toSQL(),
      )
    : [];
  const plan = decideRecharge(
    {
      card: rows,
      ownerStatus: rows?.owner_status ?? null,
      actorStatus: rows?.payer_status ?? null,
      till: { qr: { cardId: rows?.qr_card_id ?? null, expiresAt: rows?.qr_expires_at ?? null }, presentedAt: op.created_at, payerRole: rows?.payer_role ?? null, merchantStatus: rows?.merchant_status ?? null },
    },
    { amountMinor: amountOf(op) },
    { maxBalanceMinor: deps.config.MAX_BALANCE },
  );
  if (isRefusal(plan)) throw new AppError(plan.refused, plan.message, plan.details);
  return { card: rows! as MemberCardRow, plan, txNo: rows!.tx_no };
}

/**
 * POST /v1/recharges: the merchant tops up the member's card at the till, against cash or a card
 * payment it took. The QR names the card (found by the insert, as for a payment) and is not
 * consumed: a top-up moves money onto the card, so the member may pay with the same QR after it.
 * The merchant's settlement deducts it (it holds that money).
 */
const atTheTill = defineRoute({
  http: {
    path: '/recharges',
    roles: ['merchant'],
    body: z.strictObject({
      qr: z.string().min(1).max(200),
      amount: fields.amount,
      payment_method: z.enum(['cash', 'credit_card']),
      tag: fields.tag.optional(),
    }),
    ratePerKeyPerMin: (config) => config.RATE_LIMIT_PAYMENT_PER_KEY_PER_MIN,
  },
  card: 'qr',
  draft: async ({ config, principal }, { body }) => ({
    type: 'recharge',
    merchant_id: principal.merchantId,
    member_id: null,
    card_id: null,
    qr_token_hash: sha256(body.qr),
    amount_minor: parseAmount(body.amount, config.MAX_RECHARGE),
    payment_method: body.payment_method,
    payment_reference: null,
    original_tx_no: null,
    params: { tag: body.tag },
  }),
});

/**
 * POST /v1/cards/:id/recharges. Stored value is credited only against money received: the
 * member-app backend after its payment provider confirmed (payment_reference, once per method),
 * an admin, or a merchant at the till (POST /v1/recharges, above). A member token alone cannot
 * credit its own card.
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
      ...cardDraft('recharge', card.id),
      member_id: principal.memberId,
      amount_minor: amount,
      payment_method: body.payment_method,
      payment_reference: body.payment_reference ?? null,
      params: { tag: body.tag },
    };
  },
  moreRoutes: [atTheTill],
  apply: applyRecharge,
  refusals: RECHARGE_REFUSALS,
  events: { succeeded: 'recharge.succeeded', failed: 'recharge.failed' },
  transactionTypes: ['recharge'],
  balanceReasons: ['recharge'],
  pointReasons: [],
});
