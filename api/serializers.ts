import { formatMinor, formatRate, parseRate } from '../domain/money.js';
import { maskCardNo, maskEmail, maskName, maskPhone } from '../domain/masking.js';

const iso = (t: Date | string | null | undefined) => (t ? new Date(t).toISOString() : null);

export interface CardRow {
  id: string;
  card_no: string;
  type: string;
  status: string;
  owner_member_id: string;
  balance_minor: number;
  points: number;
  level: number;
  fixed_discount: string | null;
  face_value_minor: number | null;
  expires_at: Date | null;
  created_at: Date;
}

/** `discountMilli` is the card's current rate: its level's, its fixed one (corporate), or 1000 (voucher). */
export function cardJson(card: CardRow, discountMilli: number) {
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
    expires_at: iso(card.expires_at),
    created_at: iso(card.created_at),
  };
}

export interface MemberRow {
  id: string;
  member_no: string;
  name: string;
  phone: string | null;
  email: string | null;
  status: string;
  created_at: Date;
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

export interface TransactionRow {
  id: string;
  tx_no: string;
  type: string;
  status: string;
  card_id: string;
  member_id: string | null;
  merchant_id: string | null;
  original_tx_id: string | null;
  raw_amount_minor: number;
  discount_rate: string;
  final_amount_minor: number;
  refunded_amount_minor: number;
  points_earned: number;
  points_clawed_back: number;
  payment_method: string | null;
  payment_reference?: string | null;
  external_order_id: string | null;
  tag: Record<string, unknown> | null;
  reason: string | null;
  created_at: Date;
  card_no?: string;
  original_tx_no?: string | null;
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

export interface OperationRow {
  id: string;
  type: string;
  status: string;
  error_code: string | null;
  error_message: string | null;
  result: Record<string, unknown> | null;
  created_at: Date;
  completed_at: Date | null;
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
