import { Router } from 'express';
import { z } from 'zod';
import type { Deps } from '../../app/deps.js';
import { AppError } from '../../domain/errors.js';
import { maskCardNo } from '../../domain/masking.js';
import { formatRate } from '../../domain/money.js';
import { fields, parse } from '../../domain/validate.js';
import { issueCardQr, revokeCardQr, validateQr } from '../../services/qr.js';
import { allow, principalOf } from '../middleware/auth.js';
import { countHit, rateLimit } from '../middleware/rate-limit.js';
import { callerOf } from '../route-helpers.js';

const issueBody = z.strictObject({
  ttl_seconds: z.number().int().min(60).max(3600).optional(),
  member_id: fields.uuid.optional(),
});
const revokeQuery = z.strictObject({ member_id: fields.uuid.optional() });
const validateBody = z.strictObject({ qr: z.string().min(1).max(200) });

export function qrRoutes(deps: Deps): Router {
  const router = Router();
  const { config } = deps;
  const countIssue = (cardId: string) => countHit(deps, 'qr-issue', config.RATE_LIMIT_QR_ISSUE_PER_CARD_PER_MIN, cardId);

  router.post('/cards/:id/qr', allow('member', 'app', 'admin'), async (req, res) => {
    const body = parse(issueBody, req.body);
    if (principalOf(req).role === 'member' && body.member_id) throw new AppError('VALIDATION_ERROR', 'member_id is only for app and admin keys', { unknown_fields: ['member_id'] });
    const qr = await issueCardQr(deps, callerOf(req), String(req.params.id), body, countIssue);
    res.status(201).json({ qr_plain: qr.plain, expires_at: qr.expiresAt.toISOString(), card_id: qr.cardId, member_id: qr.memberId });
  });

  router.delete('/cards/:id/qr', allow('member', 'app', 'admin'), async (req, res) => {
    const query = parse(revokeQuery, req.query, 'query');
    res.json({ revoked: await revokeCardQr(deps, callerOf(req), String(req.params.id), query) });
  });

  router.post(
    '/qr/validate',
    allow('merchant'),
    rateLimit(deps, 'qr-validate', config.RATE_LIMIT_QR_VALIDATE_PER_KEY_PER_MIN, (req) => req.principal?.keyId),
    async (req, res) => {
      const body = parse(validateBody, req.body);
      const result = await validateQr(deps, principalOf(req).merchantId!, body.qr);
      if (!result.valid) return res.json({ valid: false, reason: result.reason, expires_at: result.expiresAt?.toISOString() ?? null, card: null });
      const { card } = result;
      res.json({
        valid: true,
        expires_at: result.expiresAt.toISOString(),
        card: { masked: maskCardNo(card.card_no), type: card.type, level: card.level, discount_rate: formatRate(result.rateMilli) },
      });
    },
  );

  return router;
}
