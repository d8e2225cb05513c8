import { formatMinor, formatRate, parseRate } from '../domain/money.js';
import { maskCardNo, maskEmail, maskName, maskPhone } from '../domain/masking.js';
import { cardLimitDefaults, type Config } from '../config/env.js';
import { effectiveLimits, type CardLimits } from '../domain/card-limits.js';
import { paysFromBalance, type CardType } from '../domain/discount.js';
import { ownLimits, type CardRow } from '../db/queries/member-cards.js';
import type { MemberRow } from '../db/queries/members.js';
import type { OperationRow } from '../db/queries/operations.js';
import type { TransactionRow } from '../db/queries/transactions.js';

const iso = (t: Date | string | null | undefined) => (t ? new Date(t).toISOString() : null);

/**
 * A card's limits in force (API.md PUT /v1/cards/:id/limits): each the card's own or else the
 * platform's (`source` says which; null = no limit), judged per day in `time_zone`. Standard cards
 * pay with outside money and have none (null).
 */
export function limitsJson(card: CardRow, config: Pick<Config, 'CARD_SINGLE_PAYMENT_LIMIT' | 'CARD_DAILY_SPEND_LIMIT' | 'CARD_DAILY_PAYMENT_COUNT' | 'SETTLEMENT_TZ'>) {
  if (!paysFromBalance(card.type as CardType)) return null;
  const { limits, source } = effectiveLimits(ownLimits(card), cardLimitDefaults(config));
  const amount = (minor: number | null) => (minor === null ? null : formatMinor(minor));
  return {
    single_payment_limit: amount(limits.single_payment_limit),
    daily_spend_limit: amount(limits.daily_spend_limit),
    daily_payment_count: limits.daily_payment_count,
    source,
    time_zone: config.SETTLEMENT_TZ,
  };
}

/** A card's own limits as an audit event records them (null: the platform default). */
export const ownLimitsJson = (limits: CardLimits) => ({
  single_payment_limit: limits.single_payment_limit === null ? null : formatMinor(limits.single_payment_limit),
  daily_spend_limit: limits.daily_spend_limit === null ? null : formatMinor(limits.daily_spend_limit),
  daily_payment_count: limits.daily_payment_count,
});

/**
 * `discountMilli` is the card's current rate: its level's, its fixed one (corporate), or 1000
 * (voucher); `config` gives the platform's limits under the card's own.
 */
export function cardJson(card: CardRow, discountMilli: number, config: Parameters<typeof limitsJson>[1]) {
  return {
    id: card.id,
    card_no: card.card_no,
    type: card.type,
    status: card.status,
    owner_member_id: card.owner_member_id,
    balance: formatMinor(card.balance_minor),
    points: card.points,
    level: card.level,
    discount_rate: formatRate(discountMilli),
    fixed_discount: card.fixed_discount === null ? null : formatRate(parseRate(card.fixed_discount)),
    face_value: card.face_value_minor === null ? null : formatMinor(card.face_value_minor),
    limits: limitsJson(card, config),
    expires_at: iso(card.expires_at),
    replaced_by: card.replaced_by ?? null,
    created_at: iso(card.created_at),
  };
}

/** Members as their owners and admins see them; `masked` for merchant-role readers. */
export function memberJson(member: MemberRow, extra: Record<string, unknown> = {}, masked = false) {
  return {
    id: member.id,
    member_no: member.member_no,
    name: masked ? maskName(member.name) : member.name,
    phone: masked ? maskPhone(member.phone) : member.phone,
    email: masked ? maskEmail(member.email) : member.email,
    status: member.status,
    created_at: iso(member.created_at),
    ...extra,
  };
}

/** Transactions; merchant readers see the card number masked and no member identity. */
export function transactionJson(tx: TransactionRow, forMerchant = false) {
  return {
    tx_no: tx.tx_no,
    type: tx.type,
    status: tx.status,
    card_id: forMerchant ? undefined : tx.card_id,
    card_no: tx.card_no === undefined ? undefined : forMerchant ? maskCardNo(tx.card_no) : tx.card_no,
    member_id: forMerchant ? undefined : tx.member_id,
    merchant_id: tx.merchant_id,
    original_tx_no: tx.original_tx_no ?? null,
    raw_amount: formatMinor(tx.raw_amount_minor),
    discount_rate: formatRate(parseRate(tx.discount_rate)),
    final_amount: formatMinor(tx.final_amount_minor),
    refunded_amount: formatMinor(tx.refunded_amount_minor),
    points_earned: tx.points_earned,
    points_clawed_back: tx.points_clawed_back,
    payment_method: tx.payment_method,
    external_order_id: tx.external_order_id,
    tag: tx.tag,
    reason: tx.reason,
    created_at: iso(tx.created_at),
  };
}

export function operationJson(op: OperationRow) {
  return {
    id: op.id,
    type: op.type,
    status: op.status,
    created_at: iso(op.created_at),
    completed_at: iso(op.completed_at),
    error: op.error_code ? { code: op.error_code, message: op.error_message ?? op.error_code } : null,
    result: op.result,
  };
}

export { iso };
