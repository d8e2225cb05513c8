import { randomUUID } from 'node:crypto';
import type { Knex } from 'knex';
import { z } from 'zod';
import type { Deps } from '../app/deps.js';
import { cardLimitDefaults } from '../config/env.js';
import { CHARGE_REFUSALS, decideCharge } from '../domain/decide-charge.js';
import { isRefusal } from '../domain/decision.js';
import { maskCardNo, maskName } from '../domain/masking.js';
import { formatMinor, formatRate, parseAmount } from '../domain/money.js';
import { sha256 } from '../domain/tokens.js';
import { fields } from '../domain/validate.js';
import { cardChange } from '../db/queries/ledgers.js';
import { toLevels, type LevelRow } from '../db/queries/levels.js';
import { ownLimits, type MemberCardRow } from '../db/queries/member-cards.js';
import type { OperationRecord } from '../db/queries/operations.js';
import { cardWithQrSql, qrUse, type QrParties } from '../db/queries/qr.js';
import { nextTxNoSql, transactionInsert } from '../db/queries/transactions.js';
import type { Read } from '../db/knex.js';
import { amountOf, defineKind, Refused, type Applied } from './kind.js';

export const EXTERNAL_METHODS = ['cash', 'credit_card', 'wechat', 'alipay', 'line_pay'] as const;

/** The card of a charge, locked, with the presented QR and everything the checks need. */
interface ChargeRows extends MemberCardRow, QrParties {
  levels: LevelRow[];
  tx_no: string;
  /** The card's payments so far today (SETTLEMENT_TZ), counted only when a daily limit is in force (0 otherwise). */
  spent_today_minor: number;
  payments_today: number;
}

/**
 * The card, then the presented QR, locked, with who pays and whether they and the merchant may,
 * the level table, the payment's number (reserved here; a refused charge leaves a gap) and, when
 * a daily limit is in force (the card's own, else the platform's), what the card's payments
 * of today add up to: all a charge reads, in one round trip. Today's payments are a range of the
 * card's index on (card_id, created_at); with no daily limit the range is not read at all.
 */
async function lockChargeRows(read: Read, trx: Knex.Transaction, op: OperationRecord, config: Deps['config']): Promise<ChargeRows | undefined> {
  const defaults = cardLimitDefaults(config);
  const [rows] = await read<ChargeRows>(
    trx
      .raw(
        cardWithQrSql({
          lockQr: true,
          columns: `(SELECT json_agg(l ORDER BY l.level) FROM membership_levels l) AS levels,
                    ${nextTxNoSql('payment')} AS tx_no,
                    d.spent_today_minor, d.payments_today`,
          joins: `CROSS JOIN LATERAL (
                    SELECT CAST(coalesce(sum(t.final_amount_minor), 0) AS bigint) AS spent_today_minor, CAST(count(*) AS integer) AS payments_today
                      FROM transactions t
                     WHERE t.card_id = card.id AND t.type = 'payment'
                       AND t.created_at >= (date_trunc('day', now() AT TIME ZONE :tz) AT TIME ZONE :tz)
                       AND card.type <> 'standard'
                       AND (coalesce(card.daily_spend_limit_minor, CAST(:spend AS bigint)) IS NOT NULL OR coalesce(card.daily_payment_count, CAST(:count AS integer)) IS NOT NULL)
                  ) d`,
        }),
        { card: op.card_id, merchant: op.merchant_id, hash: op.qr_token_hash, tz: config.SETTLEMENT_TZ, spend: defaults.daily_spend_limit, count: defaults.daily_payment_count },
      )
      .toSQL(),
  );
  return rows;
}

/**
 * A charge (DESIGN.md §2): QR, then who may pay, then the card, then the money. The QR counts as
 * presented when the operation was accepted, so a queue backlog never expires a valid scan.
 */
async function applyCharge(trx: Knex.Transaction, op: OperationRecord, deps: Deps, read: Read): Promise<Applied> {
  const card = op.card_id && op.qr_token_hash ? await lockChargeRows(read, trx, op, deps.config) : undefined;
  const levels = card ? toLevels(card.levels) : [];
  const plan = decideCharge(
    {
      card,
      qr: { cardId: card?.qr_card_id ?? null, expiresAt: card?.qr_expires_at ?? null },
      payerRole: card?.payer_role ?? null,
      merchantStatus: card?.merchant_status ?? null,
      ownerStatus: card?.owner_status ?? null,
      payerStatus: card?.payer_status ?? null,
      limits: card && { card: ownLimits(card), today: { spentMinor: card.spent_today_minor, payments: card.payments_today } },
    },
    { amountMinor: amountOf(op), paymentMethod: op.payment_method, presentedAt: op.created_at },
    { levels, limitDefaults: cardLimitDefaults(deps.config) },
  );
  if (isRefusal(plan)) {
    // Counted once the batch commits: a batch retried alone must not count it twice.
    throw new Refused(plan.refused, plan.message, plan.details, plan.qrInvalid ? () => deps.metrics.qrEvents.inc({ event: 'invalid' }) : undefined);
  }
  const chargedCard = card!;
  const tx = {
    id: randomUUID(),
    tx_no: chargedCard.tx_no,
    type: 'payment' as const,
    operation_id: op.id,
    card_id: chargedCard.id,
    member_id: chargedCard.qr_member_id,
    merchant_id: op.merchant_id,
    raw_amount_minor: plan.rawMinor,
    discount_rate: formatRate(plan.discountMilli),
    final_amount_minor: plan.finalMinor,
    points_earned: plan.pointsEarned,
    via_balance: plan.viaBalance,
    payment_method: plan.paymentMethod,
    external_order_id: op.params.external_order_id ?? null,
    tag: op.params.tag ?? null,
  };
  const { statements: cardWrites } = cardChange(trx, chargedCard, {
    transactionId: tx.id,
    balance: plan.balanceDeltaMinor ? { delta: plan.balanceDeltaMinor, reason: 'payment' } : undefined,
    points: { delta: plan.pointsEarned, reason: 'earn' },
    level: plan.levelAfter,
    status: plan.voucherUsed ? 'used' : undefined,
  });
  const writes = [transactionInsert(trx, tx), ...cardWrites];
  if (deps.config.QR_SINGLE_USE) writes.push(...qrUse(trx, op.qr_token_hash!));

  const result = {
    tx_no: tx.tx_no,
    raw_amount: formatMinor(plan.rawMinor),
    discount_rate: formatRate(plan.discountMilli),
    final_amount: formatMinor(plan.finalMinor),
    points_earned: plan.pointsEarned,
    payment_method: tx.payment_method,
    card: { card_no: maskCardNo(chargedCard.card_no), type: chargedCard.type, level: plan.levelAfter },
    member: { name: maskName(chargedCard.payer_name ?? '') },
  };
  return {
    writes,
    result,
    event: { merchantId: op.merchant_id, type: 'payment.succeeded', data: { ...result, external_order_id: tx.external_order_id, tag: tx.tag } },
    audit: { action: 'payment.succeeded', objectType: 'transaction', objectId: tx.tx_no, context: { operation_id: op.id, card_id: chargedCard.id, final_minor: plan.finalMinor } },
    afterCommit: deps.config.QR_SINGLE_USE ? () => deps.metrics.qrEvents.inc({ event: 'used' }) : undefined,
  };
}

/** POST /v1/payments: the POS charges the member's QR. */
export const payment = defineKind({
  type: 'payment',
  http: {
    path: '/payments',
    roles: ['merchant'],
    body: z.strictObject({
      qr: z.string().min(1).max(200),
      amount: fields.amount,
      payment_method: z.enum(EXTERNAL_METHODS).optional(),
      external_order_id: z.string().min(1).max(100).optional(),
      tag: fields.tag.optional(),
    }),
    ratePerKeyPerMin: (config) => config.RATE_LIMIT_PAYMENT_PER_KEY_PER_MIN,
  },
  // Only the card is resolved at acceptance (from the QR, in the insert), to pick its partition;
  // every rule is judged by the worker under the card lock.
  card: 'qr',
  draft: async ({ config, principal }, { body }) => ({
    type: 'payment',
    merchant_id: principal.merchantId,
    member_id: null,
    card_id: null,
    qr_token_hash: sha256(body.qr),
    amount_minor: parseAmount(body.amount, config.MAX_AMOUNT),
    payment_method: body.payment_method ?? null,
    original_tx_no: null,
    params: { external_order_id: body.external_order_id, tag: body.tag },
  }),
  apply: applyCharge,
  refusals: CHARGE_REFUSALS,
  events: { succeeded: 'payment.succeeded', failed: 'payment.failed' },
  transactionTypes: ['payment'],
  balanceReasons: ['payment'],
  pointReasons: ['earn'],
});
