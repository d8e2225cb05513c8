import { Router } from 'express';
import { z } from 'zod';
import type { Deps } from '../../app/deps.js';
import { cardRateMilli } from '../../domain/card-rate.js';
import { AppError } from '../../domain/errors.js';
import { maskCardNo } from '../../domain/masking.js';
import { mayAct } from '../../domain/may-act.js';
import { formatRate } from '../../domain/money.js';
import { newQrToken, sha256 } from '../../domain/tokens.js';
import { appendAudit } from '../../db/queries/audit-events.js';
import { loadLevels } from '../../db/queries/levels.js';
import { findCard } from '../../db/queries/member-cards.js';
import { endQrTokens, findQrByHash, issueQr, type QrLookup } from '../../db/queries/qr.js';
import { cardFor } from '../../services/card-access.js';
import { invalidQrKey, RISK_RULES, windowStart } from '../../domain/risk-rules.js';
import { allow, principalOf } from '../middleware/auth.js';
import { countHit, rateLimit } from '../middleware/rate-limit.js';
import { fields, parse } from '../../domain/validate.js';

const issueBody = z.strictObject({
  ttl_seconds: z.number().int().min(60).max(3600).optional(),
  member_id: fields.uuid.optional(),
});
const revokeQuery = z.strictObject({ member_id: fields.uuid.optional() });
const validateBody = z.strictObject({ qr: z.string().min(1).max(200) });

export function qrRoutes(deps: Deps): Router {
  const router = Router();
  const { db, config, metrics } = deps;

  /**
   * Issues (rotates) the QR of a (card, member) pair. Members get their own; app and admin keys
   * may name a bound member and otherwise issue for the owner. Viewers cannot pay, so get none.
   */
  router.post('/cards/:id/qr', allow('member', 'app', 'admin'), async (req, res) => {
    const principal = principalOf(req);
    const body = parse(issueBody, req.body);
    if (principal.role === 'member' && body.member_id) throw new AppError('VALIDATION_ERROR', 'member_id is only for app and admin keys', { unknown_fields: ['member_id'] });
    const { card } = await cardFor(db, principal, String(req.params.id), 'pay');
    // Counted once the caller may use the card, so nobody else can use up a card's issues.
    await countHit(deps, 'qr-issue', config.RATE_LIMIT_QR_ISSUE_PER_CARD_PER_MIN, card.id);
    const memberId = principal.memberId ?? body.member_id ?? card.owner_member_id;
    const binding = await db('card_bindings').where({ card_id: card.id, member_id: memberId }).first('role');
    const { rows } = await db.raw<{ rows: { member_status: string | null; card_expired: boolean }[] }>(
      `SELECT (SELECT status FROM member_profiles WHERE id = ?) AS member_status, coalesce(?::timestamptz <= now(), false) AS card_expired`,
      [memberId, card.expires_at],
    );
    // Refused now with the code the charge would end with, rather than handing out a QR that cannot pay.
    const refused = mayAct({ ...card, is_expired: rows[0]!.card_expired }, { actorStatus: rows[0]!.member_status }, { role: binding?.role ?? null }, 'issue-qr');
    if (refused) throw new AppError(refused.refused, refused.message, refused.details);

    const token = newQrToken();
    const ttl = body.ttl_seconds ?? config.QR_DEFAULT_TTL_S;
    const state = await db.transaction(async (trx) => {
      const row = await issueQr(trx, card.id, memberId, token.hash, ttl);
      await appendAudit(trx, { actorType: 'api_key', actorId: principal.keyId, role: principal.role, action: 'qr.issue', objectType: 'card', objectId: card.id, context: { member_id: memberId, ttl_seconds: ttl }, requestId: req.id, ip: req.ip });
      return row;
    });
    metrics.qrEvents.inc({ event: 'issued' });
    res.status(201).json({ qr_plain: token.plain, expires_at: state.expires_at.toISOString(), card_id: card.id, member_id: memberId });
  });

  /** Revokes: a member its own token; app and admin keys one member's (`?member_id=`) or all of the card's. */
  router.delete('/cards/:id/qr', allow('member', 'app', 'admin'), async (req, res) => {
    const principal = principalOf(req);
    const query = parse(revokeQuery, req.query, 'query');
    const { card } = await cardFor(db, principal, String(req.params.id), 'pay');
    const memberId = principal.memberId ?? query.member_id;
    const revoked = await db.transaction(async (trx) => {
      const n = await endQrTokens(trx, memberId ? { card_id: card.id, member_id: memberId } : { card_id: card.id }, 'revoked');
      await appendAudit(trx, { actorType: 'api_key', actorId: principal.keyId, role: principal.role, action: 'qr.revoke', objectType: 'card', objectId: card.id, context: { member_id: memberId ?? null, revoked: n }, requestId: req.id, ip: req.ip });
      return n;
    });
    metrics.qrEvents.inc({ event: 'revoked' }, revoked);
    res.json({ revoked });
  });

  /** Lets a POS check a QR before charging. It never consumes the token. */
  router.post(
    '/qr/validate',
    allow('merchant'),
    rateLimit(deps, 'qr-validate', config.RATE_LIMIT_QR_VALIDATE_PER_KEY_PER_MIN, (req) => req.principal?.keyId),
    async (req, res) => {
      const body = parse(validateBody, req.body);
      const qr = await findQrByHash(db, sha256(body.qr));
      const card = qr?.is_live ? await findCard(db, qr.card_id) : undefined;
      const reason = qrInvalidReason(qr, card);
      if (reason || !qr || !card) {
        metrics.qrEvents.inc({ event: 'invalid' });
        await countInvalidQr(deps, principalOf(req).merchantId!);
        return res.json({ valid: false, reason, expires_at: qr?.expires_at.toISOString() ?? null, card: null });
      }
      const rate = cardRateMilli(card, await loadLevels(db));
      res.json({
        valid: true,
        expires_at: qr.expires_at.toISOString(),
        card: { masked: maskCardNo(card.card_no), type: card.type, level: card.level, discount_rate: formatRate(rate) },
      });
    },
  );

  return router;
}

/**
 * Why a QR cannot pay, for the POS screen: unknown (never issued here), expired, used, revoked,
 * superseded (the member showed a newer one), card_not_active or card_expired; undefined if it can.
 */
export function qrInvalidReason(qr: QrLookup | undefined, card: { status: string } | undefined): string | undefined {
  if (!qr) return 'unknown';
  if (qr.end_reason) return qr.end_reason === 'rotated' ? 'superseded' : qr.end_reason;
  if (qr.card_expired) return 'card_expired';
  if (!card || card.status !== 'active') return 'card_not_active';
  return undefined;
}

/** Feeds the invalid-QR anomaly rule; best effort, like the rate limiter. */
async function countInvalidQr(deps: Deps, merchantId: string): Promise<void> {
  const key = invalidQrKey(deps.config.QUEUE_PREFIX, windowStart(Date.now(), 60));
  try {
    await deps.redis.multi().zincrby(key, 1, merchantId).expire(key, RISK_RULES.invalid_qr.windowS + 120).exec();
  } catch (err) {
    deps.logger.warn({ err: (err as Error).message }, 'could not count an invalid QR');
  }
}
