import { randomUUID } from 'node:crypto';
import type { Knex } from 'knex';
import type { Deps } from '../app/deps.js';
import { cardRateMilli } from '../domain/card-rate.js';
import { applyDiscount, paysFromBalance, pointsEarned } from '../domain/discount.js';
import { AppError } from '../domain/errors.js';
import { maskCardNo, maskName } from '../domain/masking.js';
import { formatMinor, formatRate } from '../domain/money.js';
import { cardChange } from '../db/queries/ledgers.js';
import { toLevels, type LevelRow } from '../db/queries/levels.js';
import type { MemberCardRow } from '../db/queries/member-cards.js';
import type { OperationRecord } from '../db/queries/operations.js';
import { qrUse } from '../db/queries/qr.js';
import { nextTxNoSql, transactionInsert } from '../db/queries/transactions.js';
import type { Read } from '../db/knex.js';
import type { Applied } from './operation-runner.js';

const refuse = (code: ConstructorParameters<typeof AppError>[0], message: string) => new AppError(code, message);

/** The card of a charge, locked, with the presented QR and everything the checks need. */
interface ChargeRows extends MemberCardRow {
  is_expired: boolean;
  /** The presented token's row (locked), when it is live: null columns when it is not. */
  qr_card_id: string | null;
  qr_member_id: string | null;
  qr_expires_at: Date | null;
  merchant_status: string;
  owner_status: string;
  payer_status: string | null;
  payer_name: string | null;
  payer_role: string | null;
  levels: LevelRow[];
  tx_no: string;
}

/**
 * The card, then the presented QR, locked, with who pays and whether they and the merchant may,
 * the level table and the payment's number (reserved here; a refused charge leaves a gap): all a
 * charge reads, in one round trip.
 */
async function lockChargeRows(read: Read, trx: Knex.Transaction, cardId: string, merchantId: string | null, tokenHash: string): Promise<ChargeRows | undefined> {
  const [rows] = await read<ChargeRows>(
    trx
      .raw(
        `WITH card AS (
           SELECT *, (expires_at IS NOT NULL AND expires_at <= now()) AS is_expired FROM member_cards WHERE id = :card FOR NO KEY UPDATE
         )
         SELECT card.*, q.card_id AS qr_card_id, q.member_id AS qr_member_id, q.expires_at AS qr_expires_at,
                (SELECT status FROM merchants WHERE id = :merchant) AS merchant_status,
                (SELECT status FROM member_profiles WHERE id = card.owner_member_id) AS owner_status,
                (SELECT status FROM member_profiles WHERE id = q.member_id) AS payer_status,
                (SELECT name FROM member_profiles WHERE id = q.member_id) AS payer_name,
                (SELECT role FROM card_bindings b WHERE b.card_id = q.card_id AND b.member_id = q.member_id) AS payer_role,
                (SELECT json_agg(l ORDER BY l.level) FROM membership_levels l) AS levels,
                ${nextTxNoSql('payment')} AS tx_no
           FROM card LEFT JOIN LATERAL (SELECT * FROM card_qr_state WHERE token_hash = :hash FOR UPDATE) q ON true`,
        { card: cardId, merchant: merchantId, hash: tokenHash },
      )
      .toSQL(),
  );
  return rows;
}

/**
 * A charge (DESIGN.md §2): QR, then who may pay, then the card, then the money. The QR counts as
 * presented when the operation was accepted, so a queue backlog never expires a valid scan.
 */
export async function applyCharge(trx: Knex.Transaction, op: OperationRecord, deps: Deps, read: Read): Promise<Applied> {
  const card = op.card_id && op.qr_token_hash ? await lockChargeRows(read, trx, op.card_id, op.merchant_id, op.qr_token_hash) : undefined;
  if (!card || card.qr_card_id !== card.id || !card.qr_expires_at || card.qr_expires_at <= op.created_at) {
    deps.metrics.qrEvents.inc({ event: 'invalid' });
    throw refuse('QR_EXPIRED_OR_INVALID', 'The QR code has expired or is not valid; ask the member to refresh it');
  }
  if (!card.payer_role || card.payer_role === 'viewer') throw refuse('QR_EXPIRED_OR_INVALID', 'The QR code is no longer valid for this card');
  if (card.merchant_status !== 'active') throw refuse('MERCHANT_SUSPENDED', 'The merchant is suspended');
  if (card.owner_status !== 'active' || card.payer_status !== 'active') throw refuse('MEMBER_SUSPENDED', 'The member is suspended');
  if (card.type === 'voucher' && card.status === 'used') throw refuse('VOUCHER_ALREADY_USED', 'The voucher has already been used');
  if (card.status !== 'active') throw refuse('CARD_NOT_ACTIVE', `The card is ${card.status}`);
  if (card.is_expired) throw refuse('CARD_EXPIRED', 'The card has expired');
  if (card.type === 'standard' && !op.payment_method) throw refuse('PAYMENT_METHOD_REQUIRED', 'A standard card pays with an external method: give payment_method');

  const levels = toLevels(card.levels);
  const rate = cardRateMilli(card, levels);
  const finalMinor = applyDiscount(op.amount_minor, rate);
  const viaBalance = paysFromBalance(card.type);
  if (viaBalance && card.balance_minor < finalMinor) {
    throw new AppError('INSUFFICIENT_BALANCE', 'The card balance is not enough for this payment', { balance: formatMinor(card.balance_minor), needed: formatMinor(finalMinor) });
  }
  const earned = pointsEarned(op.amount_minor, card.type);
  const tx = {
    id: randomUUID(),
    tx_no: card.tx_no,
    type: 'payment' as const,
    operation_id: op.id,
    card_id: card.id,
    member_id: card.qr_member_id,
    merchant_id: op.merchant_id,
    raw_amount_minor: op.amount_minor,
    discount_rate: formatRate(rate),
    final_amount_minor: finalMinor,
    points_earned: earned,
    via_balance: viaBalance,
    payment_method: viaBalance ? 'balance' : op.payment_method,
    external_order_id: op.params.external_order_id ?? null,
    tag: op.params.tag ?? null,
  };
  const { statements: cardWrites, after } = cardChange(trx, card, levels, {
    transactionId: tx.id,
    balance: viaBalance ? { delta: -finalMinor, reason: 'payment' } : undefined,
    points: { delta: earned, reason: 'earn' },
    status: card.type === 'voucher' ? 'used' : undefined,
  });
  const writes = [transactionInsert(trx, tx), ...cardWrites];
  if (deps.config.QR_SINGLE_USE) {
    writes.push(...qrUse(trx, op.qr_token_hash!));
    deps.metrics.qrEvents.inc({ event: 'used' });
  }

  const result = {
    tx_no: tx.tx_no,
    raw_amount: formatMinor(op.amount_minor),
    discount_rate: formatRate(rate),
    final_amount: formatMinor(finalMinor),
    points_earned: earned,
    payment_method: tx.payment_method,
    card: { card_no: maskCardNo(card.card_no), type: card.type, level: after.level },
    member: { name: maskName(card.payer_name ?? '') },
  };
  return {
    writes,
    result,
    event: { merchantId: op.merchant_id, type: 'payment.succeeded', data: { ...result, external_order_id: tx.external_order_id, tag: tx.tag } },
    audit: { action: 'payment.succeeded', objectType: 'transaction', objectId: tx.tx_no, context: { operation_id: op.id, card_id: card.id, final_minor: finalMinor } },
  };
}
