import bcrypt from 'bcryptjs';
import type { Deps } from '../app/deps.js';
import type { Db } from '../db/knex.js';
import { countBindings, deleteBinding, findBinding, insertBinding, setBindingRole, type BindingRole, type BindingRow } from '../db/queries/bindings.js';
import { changeBalance, changePoints } from '../db/queries/ledgers.js';
import { loadLevels } from '../db/queries/levels.js';
import { findCardByNo, insertCard, lockCard, setBindingPasswordHash, type MemberCardRow } from '../db/queries/member-cards.js';
import { findMember } from '../db/queries/members.js';
import { isUniqueViolation } from '../db/pg-errors.js';
import { endQrTokens } from '../db/queries/qr.js';
import { insertTransaction } from '../db/queries/transactions.js';
import { isShareable, type CardType } from '../domain/discount.js';
import { AppError, conflict, forbidden, notFound } from '../domain/errors.js';
import { levelAfterPoints } from '../domain/levels.js';
import { requireActiveMember } from '../domain/may-act.js';
import { formatMinor, parseAmount } from '../domain/money.js';
import type { Caller } from '../domain/principal.js';
import { fieldError } from '../domain/validate.js';
import { auditBy } from './audit.js';
import { cardFor, refuseIfClosed } from './card-access.js';

const BCRYPT_COST = 10;

// Compared against when the card number is unknown, so that a miss costs as long as a wrong password.
let decoyHash: Promise<string> | undefined;
const decoy = () => (decoyHash ??= bcrypt.hash('decoy-binding-password', BCRYPT_COST));

export interface NewCardInput {
  type: Exclude<CardType, 'standard'>;
  owner_member_id: string;
  fixed_discount?: string;
  face_value?: number | string;
  expires_at?: string;
  binding_password?: string;
  payment_reference?: string;
}

/**
 * A prepaid, corporate or voucher card for a member, with its owner binding. Value only against
 * money: the member-app backend issues a voucher for a payment its provider confirmed
 * (payment_reference, once), up to MAX_VOUCHER_VALUE; admins issue any, audited.
 */
export async function createCard({ db, config }: Deps, caller: Caller, input: NewCardInput): Promise<MemberCardRow> {
  const byApp = caller.principal.role === 'app';
  if (byApp && input.type === 'voucher' && input.payment_reference === undefined) throw fieldError('payment_reference', "is required for vouchers issued by an app key: the payment provider's id of the money paid");
  const maxFace = Math.min(config.MAX_AMOUNT, config.MAX_BALANCE, byApp ? config.MAX_VOUCHER_VALUE : Number.MAX_SAFE_INTEGER);
  const faceValue = input.face_value === undefined ? null : parseAmount(input.face_value, maxFace, 'face_value');
  if (input.expires_at !== undefined && (await db.raw<{ rows: { past: boolean }[] }>('SELECT ?::timestamptz <= now() AS past', [input.expires_at])).rows[0]!.past) {
    throw fieldError('expires_at', 'must be in the future');
  }
  const owner = await findMember(db, input.owner_member_id);
  if (!owner) throw notFound('member');
  requireActiveMember(owner);
  const passwordHash = input.binding_password === undefined ? null : await bcrypt.hash(input.binding_password, BCRYPT_COST);

  return db.transaction(async (trx) => {
    const row = await insertCard(trx, {
      type: input.type,
      owner_member_id: owner.id,
      fixed_discount: input.type === 'corporate' ? (input.fixed_discount ?? '1.000') : null,
      face_value_minor: faceValue,
      binding_password_hash: passwordHash,
      expires_at: input.expires_at ?? null,
    });
    await insertBinding(trx, { card_id: row.id, member_id: owner.id, role: 'owner' });
    if (faceValue !== null) {
      // The face value enters like a recharge, so balance = Σ balance_ledger holds for vouchers too.
      const tx = await insertTransaction(trx, {
        type: 'recharge',
        operation_id: null,
        card_id: row.id,
        member_id: owner.id,
        merchant_id: null,
        raw_amount_minor: faceValue,
        final_amount_minor: faceValue,
        via_balance: true,
        payment_method: 'voucher_issue',
        payment_reference: input.payment_reference ?? null,
      }).catch((err: unknown) => {
        if (isUniqueViolation(err, 'transactions_payment_reference')) throw new AppError('PAYMENT_REFERENCE_USED', 'This payment_reference has already paid for a voucher', { payment_reference: input.payment_reference });
        throw err;
      });
      await changeBalance(trx, row, { delta: faceValue, transactionId: tx.id, reason: 'recharge' });
    }
    await auditBy(trx, caller, {
      action: 'card.create',
      objectType: 'card',
      objectId: row.id,
      context: { type: row.type, owner_member_id: owner.id, face_value: faceValue === null ? null : formatMinor(faceValue), payment_reference: input.payment_reference ?? null },
    });
    return row;
  });
}

/** Counts wrong binding passwords per card number and refuses while too many are recent (api/middleware/failure-lock.ts). */
export interface GuessLimit {
  assertOpen(cardNo: string): Promise<void>;
  countFailure(cardNo: string): Promise<void>;
}

/**
 * Binds a member to a shared card by its number and binding password, as `member` (the owner
 * sets other roles). One answer for an unknown number, a card without a password and a wrong
 * password, so numbers cannot be probed; guessing is limited per card number, whoever guesses.
 */
export async function bindCard({ db, config }: Deps, caller: Caller, input: { cardNo: string; password: string; memberId: string }, guesses: GuessLimit): Promise<BindingRow> {
  const member = await findMember(db, input.memberId);
  if (!member) throw notFound('member');
  requireActiveMember(member);
  // After BINDING_MAX_FAILURES wrong passwords the number is locked, even for the right one.
  // Unknown numbers lock the same way, so the lock tells nothing about which numbers exist.
  await guesses.assertOpen(input.cardNo);
  const found = await findCardByNo(db, input.cardNo);
  const matches = await bcrypt.compare(input.password, found?.binding_password_hash ?? (await decoy()));
  if (!found || !found.binding_password_hash || !isShareable(found.type) || !matches) {
    await guesses.countFailure(input.cardNo);
    throw new AppError('BINDING_PASSWORD_INVALID', 'The card number or the binding password is wrong');
  }
  return db.transaction(async (trx) => {
    // Bindings of one card take turns, so two concurrent binds cannot both pass the limit.
    const locked = await lockCard(trx, found.id);
    // Told only to who knows the password, under the lock a replacement closes the card with: a closed card takes no new members.
    refuseIfClosed(locked);
    if (await findBinding(trx, found.id, input.memberId)) throw conflict('The member is already bound to this card');
    if ((await countBindings(trx, found.id)) >= config.MAX_BINDINGS_PER_CARD) {
      throw new AppError('BINDING_LIMIT_REACHED', `A card may have at most ${config.MAX_BINDINGS_PER_CARD} bindings`);
    }
    const row = await insertBinding(trx, { card_id: found.id, member_id: input.memberId, role: 'member' });
    await auditBy(trx, caller, { action: 'card.bind', objectType: 'card', objectId: found.id, context: { member_id: input.memberId, role: 'member' } });
    return row;
  });
}

/** Removes a binding: the member itself, the card's owner or admin, or an admin key; never the owner's. */
export async function unbindCard(db: Db, caller: Caller, cardId: string, memberId: string): Promise<BindingRow> {
  const { principal } = caller;
  const { card, bindingRole } = await cardFor(db, principal, cardId, 'read');
  const self = principal.role === 'member' && principal.memberId === memberId;
  if (principal.role === 'member' && !self && bindingRole !== 'owner' && bindingRole !== 'admin') throw forbidden('Only the card owner or a card admin may remove another member');
  return db.transaction(async (trx) => {
    refuseIfClosed(await lockCard(trx, card.id));
    const binding = await findBinding(trx, card.id, memberId);
    if (!binding) throw notFound('binding');
    if (binding.role === 'owner') throw conflict('The owner binding cannot be removed');
    await deleteBinding(trx, card.id, memberId);
    // A member who no longer may pay with the card must not keep a live QR for it.
    const revoked = await endQrTokens(trx, { card_id: card.id, member_id: memberId }, 'revoked');
    await auditBy(trx, caller, { action: 'card.unbind', objectType: 'card', objectId: card.id, context: { member_id: memberId, role: binding.role, qr_revoked: revoked } });
    return binding;
  });
}

/** The card, if the caller manages its bindings: an admin key, or its owner. */
async function ownedOrAdmin(db: Db, caller: Caller, cardId: string): Promise<MemberCardRow> {
  const { card, bindingRole } = await cardFor(db, caller.principal, cardId, 'read');
  if (caller.principal.role === 'member' && bindingRole !== 'owner') throw forbidden('Only the card owner or an admin may do that');
  return card;
}

/** The owner (or an admin) sets a bound member's role; a viewer's live QR ends with the change. */
export async function changeBindingRole(db: Db, caller: Caller, cardId: string, memberId: string, role: Exclude<BindingRole, 'owner'>): Promise<BindingRow> {
  const card = await ownedOrAdmin(db, caller, cardId);
  return db.transaction(async (trx) => {
    refuseIfClosed(await lockCard(trx, card.id));
    const binding = await findBinding(trx, card.id, memberId);
    if (!binding) throw notFound('binding');
    if (binding.role === 'owner') throw conflict('The owner binding keeps its role');
    const row = await setBindingRole(trx, binding.id, role);
    const qrRevoked = role === 'viewer' ? await endQrTokens(trx, { card_id: card.id, member_id: memberId }, 'revoked') : 0;
    await auditBy(trx, caller, { action: 'card.binding_role', objectType: 'card', objectId: card.id, context: { member_id: memberId, before: binding.role, after: role, qr_revoked: qrRevoked } });
    return row;
  });
}

/** The owner (or an admin) rotates a shared card's binding password. */
export async function rotateBindingPassword(db: Db, caller: Caller, cardId: string, password: string): Promise<void> {
  const card = await ownedOrAdmin(db, caller, cardId);
  if (!isShareable(card.type)) throw new AppError('UNPROCESSABLE', 'Only shared cards (prepaid, corporate) have a binding password');
  const hash = await bcrypt.hash(password, BCRYPT_COST);
  await db.transaction(async (trx) => {
    refuseIfClosed(await lockCard(trx, card.id));
    await setBindingPasswordHash(trx, card.id, hash);
    await auditBy(trx, caller, { action: 'card.binding_password', objectType: 'card', objectId: card.id, context: {} });
  });
}

/** An admin's points correction: never below 0, the level follows, with a point-ledger row. */
export async function adjustPoints(db: Db, caller: Caller, cardId: string, input: { delta: number; reason: string }): Promise<{ points: number; level: number }> {
  return db.transaction(async (trx) => {
    const card = await lockCard(trx, cardId);
    if (!card) throw notFound('card');
    refuseIfClosed(card);
    if (card.type === 'corporate' || card.type === 'voucher') throw new AppError('UNPROCESSABLE', `${card.type} cards do not carry points`);
    if (card.points + input.delta < 0) throw new AppError('UNPROCESSABLE', `Points cannot go below 0: the card has ${card.points}`, { points: card.points, delta: input.delta });
    const level = levelAfterPoints(card.level, card.points + input.delta, input.delta, await loadLevels(trx));
    const after = await changePoints(trx, card, { delta: input.delta, level, reason: 'adjustment', note: input.reason, actorKeyId: caller.principal.keyId });
    await auditBy(trx, caller, { action: 'card.points_adjust', objectType: 'card', objectId: cardId, context: { delta: input.delta, reason: input.reason, points_after: after.points } });
    return after;
  });
}
