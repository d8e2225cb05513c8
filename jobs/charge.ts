import type { Knex } from 'knex';
import type { Deps } from '../config/deps.js';
import { cardRateMilli } from '../domain/card-rate.js';
import { applyDiscount, paysFromBalance, pointsEarned } from '../domain/discount.js';
import { AppError } from '../domain/errors.js';
import { maskCardNo, maskName } from '../domain/masking.js';
import { formatMinor, formatRate } from '../domain/money.js';
import { changeCard } from '../db/queries/ledgers.js';
import { toLevels, type LevelRow } from '../db/queries/levels.js';
import { lockCard } from '../db/queries/member-cards.js';
import type { OperationRecord } from '../db/queries/operations.js';
import { endQrTokens, type QrStateRow } from '../db/queries/qr.js';
import { insertTransaction } from '../db/queries/transactions.js';
import type { OperationPayload } from './names.js';
import { runOperation, type Applied } from './operation-runner.js';

export const runCharge = (deps: Deps, payload: OperationPayload) => runOperation(deps, payload.operationId, applyCharge);

const refuse = (code: ConstructorParameters<typeof AppError>[0], message: string) => new AppError(code, message);

interface PresentedQr extends QrStateRow {
  merchant_status: string;
  owner_status: string;
  payer_status: string;
  payer_name: string;
  payer_role: string | null;
  levels: LevelRow[];
}

/**
 * The presented QR, locked, with everything the checks need — who pays and whether they and the
 * merchant may, and the level table — in one round trip.
 */
async function lockPresentedQr(trx: Knex.Transaction, op: OperationRecord, ownerId: string): Promise<PresentedQr | undefined> {
  const { rows } = await trx.raw<{ rows: PresentedQr[] }>(
    `SELECT q.*,
            (SELECT status FROM merchants WHERE id = :merchant) AS merchant_status,
            (SELECT status FROM member_profiles WHERE id = :owner) AS owner_status,
            (SELECT status FROM member_profiles WHERE id = q.member_id) AS payer_status,
            (SELECT name FROM member_profiles WHERE id = q.member_id) AS payer_name,
            (SELECT role FROM card_bindings b WHERE b.card_id = q.card_id AND b.member_id = q.member_id) AS payer_role,
            (SELECT json_agg(l ORDER BY l.level) FROM membership_levels l) AS levels
       FROM card_qr_state q WHERE q.token_hash = :hash FOR UPDATE OF q`,
    { merchant: op.merchant_id, owner: ownerId, hash: op.qr_token_hash },
  );
  return rows[0];
}

/**
 * A charge (DESIGN.md §2): QR, then who may pay, then the card, then the money. The QR counts as
 * presented when the operation was accepted, so a queue backlog never expires a valid scan.
 */
async function applyCharge(trx: Knex.Transaction, op: OperationRecord, deps: Deps): Promise<Applied> {
  if (!op.card_id || !op.qr_token_hash) throw refuse('QR_EXPIRED_OR_INVALID', 'The QR code is not valid');
  const card = await lockCard(trx, op.card_id);
  const qr = card ? await lockPresentedQr(trx, op, card.owner_member_id) : undefined;
  if (!card || !qr || qr.card_id !== card.id || new Date(qr.expires_at) <= op.created_at) {
    deps.metrics.qrEvents.inc({ event: 'invalid' });
    throw refuse('QR_EXPIRED_OR_INVALID', 'The QR code has expired or is not valid; ask the member to refresh it');
  }
  if (!qr.payer_role || qr.payer_role === 'viewer') throw refuse('QR_EXPIRED_OR_INVALID', 'The QR code is no longer valid for this card');
  if (qr.merchant_status !== 'active') throw refuse('MERCHANT_SUSPENDED', 'The merchant is suspended');
  if (qr.owner_status !== 'active' || qr.payer_status !== 'active') throw refuse('MEMBER_SUSPENDED', 'The member is suspended');
  if (card.type === 'voucher' && card.status === 'used') throw refuse('VOUCHER_ALREADY_USED', 'The voucher has already been used');
  if (card.status !== 'active') throw refuse('CARD_NOT_ACTIVE', `The card is ${card.status}`);
  if (card.is_expired) throw refuse('CARD_EXPIRED', 'The card has expired');
  if (card.type === 'standard' && !op.payment_method) throw refuse('PAYMENT_METHOD_REQUIRED', 'A standard card pays with an external method: give payment_method');

  const levels = toLevels(qr.levels);
  const rate = cardRateMilli(card, levels);
  const finalMinor = applyDiscount(op.amount_minor, rate);
  const viaBalance = paysFromBalance(card.type);
  if (viaBalance && card.balance_minor < finalMinor) {
    throw new AppError('INSUFFICIENT_BALANCE', 'The card balance is not enough for this payment', { balance: formatMinor(card.balance_minor), needed: formatMinor(finalMinor) });
  }
  const earned = pointsEarned(op.amount_minor, card.type);
  const tx = await insertTransaction(trx, {
    type: 'payment',
    operation_id: op.id,
    card_id: card.id,
    member_id: qr.member_id,
    merchant_id: op.merchant_id,
    raw_amount_minor: op.amount_minor,
    discount_rate: formatRate(rate),
    final_amount_minor: finalMinor,
    points_earned: earned,
    via_balance: viaBalance,
    payment_method: viaBalance ? 'balance' : op.payment_method,
    external_order_id: op.params.external_order_id ?? null,
    tag: op.params.tag ?? null,
  });
  const after = await changeCard(trx, card, levels, {
    transactionId: tx.id,
    balance: viaBalance ? { delta: -finalMinor, reason: 'payment' } : undefined,
    points: { delta: earned, reason: 'earn' },
  });
  if (card.type === 'voucher') await trx('member_cards').where({ id: card.id }).update({ status: 'used', updated_at: trx.fn.now() });
  if (deps.config.QR_SINGLE_USE) {
    await endQrTokens(trx, { token_hash: qr.token_hash }, 'used');
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
    member: { name: maskName(qr.payer_name) },
  };
  return {
    result,
    event: { merchantId: op.merchant_id, type: 'payment.succeeded', data: { ...result, external_order_id: tx.external_order_id, tag: tx.tag } },
    audit: { action: 'payment.succeeded', objectType: 'transaction', objectId: tx.tx_no, context: { operation_id: op.id, card_id: card.id, final_minor: finalMinor } },
  };
}
