import bcrypt from 'bcryptjs';
import { Router, type Request } from 'express';
import type { Deps } from '../../app/deps.js';
import { countBindings, deleteBinding, findBinding, insertBinding, listBindings, setBindingRole } from '../../db/queries/bindings.js';
import { changeBalance, changePoints } from '../../db/queries/ledgers.js';
import { loadLevels } from '../../db/queries/levels.js';
import { findCardByNo, insertCard, lockCard, setBindingPasswordHash, type MemberCardRow } from '../../db/queries/member-cards.js';
import { findMember } from '../../db/queries/members.js';
import { isUniqueViolation } from '../../db/pg-errors.js';
import { endQrTokens } from '../../db/queries/qr.js';
import { insertTransaction } from '../../db/queries/transactions.js';
import { cardRateMilli } from '../../domain/card-rate.js';
import { isShareable } from '../../domain/discount.js';
import { AppError, forbidden, notFound } from '../../domain/errors.js';
import { levelAfterPoints } from '../../domain/levels.js';
import { formatMinor, parseAmount } from '../../domain/money.js';
import { cardFor, isUuid } from '../../services/card-access.js';
import { allow, principalOf } from '../middleware/auth.js';
import { failureLock } from '../middleware/failure-lock.js';
import { rateLimit } from '../middleware/rate-limit.js';
import { callerOf, conflict, idParam, recordAudit, requireActiveMember } from '../route-helpers.js';
import { changeStatus, statusActions } from '../../services/status.js';
import { fieldError } from '../../domain/validate.js';
import { reasonBody } from '../schemas/common.js';
import { bindBody, bindingPasswordBody, bindingRoleBody, createCardBody, pointsAdjustmentBody } from '../schemas/cards.js';
import { cardJson } from '../serializers.js';
import { parse } from '../../domain/validate.js';
import { bindingJson } from '../views.js';

const BCRYPT_COST = 10;

// Compared against when the card number is unknown, so that a miss costs as long as a wrong password.
let decoyHash: Promise<string> | undefined;
const decoy = () => (decoyHash ??= bcrypt.hash('decoy-binding-password', BCRYPT_COST));

export function cardRoutes(deps: Deps): Router {
  const router = Router();
  const { db, config } = deps;

  const bindingLock = failureLock(deps, 'bind-fail', config.BINDING_MAX_FAILURES, config.BINDING_LOCK_S, 'BINDING_LOCKED');
  const view = async (card: MemberCardRow) => cardJson(card, cardRateMilli(card, await loadLevels(db)));

  router.post('/cards', allow('admin', 'app'), async (req, res) => {
    const body = parse(createCardBody, req.body);
    // Value only against money: the member-app backend issues a voucher for a payment its provider
    // confirmed (payment_reference, once), up to MAX_VOUCHER_VALUE; admins issue any, audited.
    const byApp = principalOf(req).role === 'app';
    if (byApp && body.type === 'voucher' && body.payment_reference === undefined) throw fieldError('payment_reference', 'is required for vouchers issued by an app key: the payment provider\'s id of the money paid');
    const maxFace = Math.min(config.MAX_AMOUNT, config.MAX_BALANCE, byApp ? config.MAX_VOUCHER_VALUE : Number.MAX_SAFE_INTEGER);
    const faceValue = body.face_value === undefined ? null : parseAmount(body.face_value, maxFace, 'face_value');
    if (body.expires_at !== undefined && (await db.raw<{ rows: { past: boolean }[] }>('SELECT ?::timestamptz <= now() AS past', [body.expires_at])).rows[0]!.past) {
      throw fieldError('expires_at', 'must be in the future');
    }
    const owner = await findMember(db, body.owner_member_id);
    if (!owner) throw notFound('member');
    requireActiveMember(owner);
    const passwordHash = body.binding_password === undefined ? null : await bcrypt.hash(body.binding_password, BCRYPT_COST);

    const card = await db.transaction(async (trx) => {
      const row = await insertCard(trx, {
        type: body.type,
        owner_member_id: owner.id,
        fixed_discount: body.type === 'corporate' ? (body.fixed_discount ?? '1.000') : null,
        face_value_minor: faceValue,
        binding_password_hash: passwordHash,
        expires_at: body.expires_at ?? null,
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
          payment_reference: body.payment_reference ?? null,
        }).catch((err: unknown) => {
          if (isUniqueViolation(err, 'transactions_payment_reference')) throw new AppError('PAYMENT_REFERENCE_USED', 'This payment_reference has already paid for a voucher', { payment_reference: body.payment_reference });
          throw err;
        });
        await changeBalance(trx, row, { delta: faceValue, transactionId: tx.id, reason: 'recharge' });
      }
      await recordAudit(trx, req, {
        action: 'card.create',
        objectType: 'card',
        objectId: row.id,
        context: { type: row.type, owner_member_id: owner.id, face_value: faceValue === null ? null : formatMinor(faceValue), payment_reference: body.payment_reference ?? null },
      });
      return row;
    });
    res.status(201).json(await view(card));
  });

  router.get('/cards/:id', allow('admin', 'app', 'member'), async (req, res) => {
    const principal = principalOf(req);
    const { card, bindingRole } = await cardFor(db, principal, String(req.params.id), 'read');
    // Who else uses a card is for the people who manage it, not for every bound member.
    const seesBindings = bindingRole === null || bindingRole === 'owner' || bindingRole === 'admin';
    const bindings = seesBindings ? (await listBindings(db, card.id)).map(bindingJson) : undefined;
    res.json({ ...(await view(card)), role: bindingRole, bindings });
  });

  for (const action of statusActions('card')) {
    router.post(`/cards/:id/${action}`, allow('admin'), async (req, res) => {
      const { reason } = parse(reasonBody, req.body);
      res.json(await view(await changeStatus(db, callerOf(req), 'card', action, idParam(req, 'id', 'card'), reason)));
    });
  }

  // Per member: a member token by its member, an app by the member it binds for (one app serves many).
  const bindSubject = (req: Request) => {
    const principal = req.principal;
    if (!principal) return undefined;
    if (principal.role === 'member') return `member:${principal.memberId}`;
    const memberId = (req.body as { member_id?: unknown } | undefined)?.member_id;
    return `key:${principal.keyId}:${typeof memberId === 'string' && isUuid(memberId) ? memberId.toLowerCase() : '-'}`;
  };

  router.post('/cards/bind', allow('member', 'app'), rateLimit(deps, 'bind', config.RATE_LIMIT_BIND_PER_MIN, bindSubject), async (req, res) => {
    const principal = principalOf(req);
    const body = parse(bindBody, req.body);
    let memberId: string;
    if (principal.role === 'member') {
      if (body.member_id !== undefined) throw fieldError('member_id', 'is not accepted with a member token: a member binds itself');
      memberId = principal.memberId!;
    } else {
      if (body.member_id === undefined) throw fieldError('member_id', 'is required with an app key');
      memberId = body.member_id.toLowerCase();
    }
    const member = await findMember(db, memberId);
    if (!member) throw notFound('member');
    requireActiveMember(member);

    // Guessing is limited per card number too, whoever guesses: after BINDING_MAX_FAILURES wrong
    // passwords the number is locked, even for the right one. Unknown numbers lock the same way,
    // so the lock tells nothing about which numbers exist.
    await bindingLock.assertOpen(body.card_no);
    // One answer for an unknown number, a card without a password and a wrong password, so numbers cannot be probed.
    const found = await findCardByNo(db, body.card_no);
    const matches = await bcrypt.compare(body.binding_password, found?.binding_password_hash ?? (await decoy()));
    if (!found || !found.binding_password_hash || !isShareable(found.type) || !matches) {
      await bindingLock.countFailure(body.card_no);
      throw new AppError('BINDING_PASSWORD_INVALID', 'The card number or the binding password is wrong');
    }

    const binding = await db.transaction(async (trx) => {
      // Bindings of one card take turns, so two concurrent binds cannot both pass the limit.
      await lockCard(trx, found.id);
      if (await findBinding(trx, found.id, memberId)) throw conflict('The member is already bound to this card');
      if ((await countBindings(trx, found.id)) >= config.MAX_BINDINGS_PER_CARD) {
        throw new AppError('BINDING_LIMIT_REACHED', `A card may have at most ${config.MAX_BINDINGS_PER_CARD} bindings`);
      }
      const row = await insertBinding(trx, { card_id: found.id, member_id: memberId, role: 'member' });
      await recordAudit(trx, req, { action: 'card.bind', objectType: 'card', objectId: found.id, context: { member_id: memberId, role: 'member' } });
      return row;
    });
    res.status(201).json(bindingJson(binding));
  });

  router.delete('/cards/:id/bindings/:member_id', allow('admin', 'member'), async (req, res) => {
    const principal = principalOf(req);
    const { card, bindingRole } = await cardFor(db, principal, String(req.params.id), 'read');
    const memberId = idParam(req, 'member_id', 'binding');
    const self = principal.role === 'member' && principal.memberId === memberId;
    if (principal.role === 'member' && !self && bindingRole !== 'owner' && bindingRole !== 'admin') {
      throw forbidden('Only the card owner or a card admin may remove another member');
    }
    const removed = await db.transaction(async (trx) => {
      await lockCard(trx, card.id);
      const binding = await findBinding(trx, card.id, memberId);
      if (!binding) throw notFound('binding');
      if (binding.role === 'owner') throw conflict('The owner binding cannot be removed');
      await deleteBinding(trx, card.id, memberId);
      // A member who no longer may pay with the card must not keep a live QR for it.
      const revoked = await endQrTokens(trx, { card_id: card.id, member_id: memberId }, 'revoked');
      await recordAudit(trx, req, { action: 'card.unbind', objectType: 'card', objectId: card.id, context: { member_id: memberId, role: binding.role, qr_revoked: revoked } });
      return binding;
    });
    res.json({ ...bindingJson(removed), removed: true });
  });

  /** The card, if the caller manages its bindings: an admin key, or its owner (routes allow only admin and member keys). */
  const asOwnerOrAdmin = async (req: Request) => {
    const principal = principalOf(req);
    const { card, bindingRole } = await cardFor(db, principal, String(req.params.id), 'read');
    if (principal.role === 'member' && bindingRole !== 'owner') throw forbidden('Only the card owner or an admin may do that');
    return card;
  };

  router.patch('/cards/:id/bindings/:member_id', allow('admin', 'member'), async (req, res) => {
    const card = await asOwnerOrAdmin(req);
    const memberId = idParam(req, 'member_id', 'binding');
    const { role } = parse(bindingRoleBody, req.body);
    const changed = await db.transaction(async (trx) => {
      await lockCard(trx, card.id);
      const binding = await findBinding(trx, card.id, memberId);
      if (!binding) throw notFound('binding');
      if (binding.role === 'owner') throw conflict('The owner binding keeps its role');
      const row = await setBindingRole(trx, binding.id, role);
      // A viewer may not pay: its live QR ends with the change.
      const qrRevoked = role === 'viewer' ? await endQrTokens(trx, { card_id: card.id, member_id: memberId }, 'revoked') : 0;
      await recordAudit(trx, req, { action: 'card.binding_role', objectType: 'card', objectId: card.id, context: { member_id: memberId, before: binding.role, after: role, qr_revoked: qrRevoked } });
      return row;
    });
    res.json(bindingJson(changed));
  });

  router.post('/cards/:id/binding-password', allow('admin', 'member'), async (req, res) => {
    const card = await asOwnerOrAdmin(req);
    if (!isShareable(card.type)) throw new AppError('UNPROCESSABLE', 'Only shared cards (prepaid, corporate) have a binding password');
    const { password } = parse(bindingPasswordBody, req.body);
    const hash = await bcrypt.hash(password, BCRYPT_COST);
    await db.transaction(async (trx) => {
      await lockCard(trx, card.id);
      await setBindingPasswordHash(trx, card.id, hash);
      await recordAudit(trx, req, { action: 'card.binding_password', objectType: 'card', objectId: card.id, context: {} });
    });
    res.status(204).end();
  });

  router.post('/cards/:id/points-adjustments', allow('admin'), async (req, res) => {
    const id = idParam(req, 'id', 'card');
    const body = parse(pointsAdjustmentBody, req.body);
    const principal = principalOf(req);
    const result = await db.transaction(async (trx) => {
      const card = await lockCard(trx, id);
      if (!card) throw notFound('card');
      if (card.type === 'corporate' || card.type === 'voucher') throw new AppError('UNPROCESSABLE', `${card.type} cards do not carry points`);
      if (card.points + body.delta < 0) {
        throw new AppError('UNPROCESSABLE', `Points cannot go below 0: the card has ${card.points}`, { points: card.points, delta: body.delta });
      }
      const level = levelAfterPoints(card.level, card.points + body.delta, body.delta, await loadLevels(trx));
      const after = await changePoints(trx, card, { delta: body.delta, level, reason: 'adjustment', note: body.reason, actorKeyId: principal.keyId });
      await recordAudit(trx, req, { action: 'card.points_adjust', objectType: 'card', objectId: id, context: { delta: body.delta, reason: body.reason, points_after: after.points } });
      return after;
    });
    res.status(201).json({ card_id: id, delta: body.delta, points: result.points, level: result.level });
  });

  return router;
}
