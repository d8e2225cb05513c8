import type { Deps } from '../app/deps.js';
import { auditAppend } from '../db/queries/audit-events.js';
import { loadLevels } from '../db/queries/levels.js';
import { findCard, type MemberCardRow } from '../db/queries/member-cards.js';
import { pipelinedTransaction } from '../db/pipelined-transaction.js';
import { endQrTokens, findQrByHash, qrIssue, qrIssueCard, type QrLookup, type QrStateRow } from '../db/queries/qr.js';
import { cardRateMilli } from '../domain/card-rate.js';
import { AppError } from '../domain/errors.js';
import { mayAct } from '../domain/may-act.js';
import type { Caller } from '../domain/principal.js';
import { invalidQrKey, RISK_RULES, windowStart } from '../domain/risk-rules.js';
import { partitionOf } from '../domain/partition.js';
import { newQrToken, sha256 } from '../domain/tokens.js';
import { auditBy, auditInput } from './audit.js';
import { accessTo, cardFor, refuseUnreachable } from './card-access.js';

/**
 * QR issues and revocations chain per card partition: every till payment starts with an issue, and
 * one chain for all of them made every issue wait for the one head row (13–16 backends queued on it).
 */
const qrChain = (cardId: string, partitions: number) => `qr-${partitionOf(cardId, partitions)}`;

export interface IssuedQr {
  /** The token in clear: shown once, only its hash is stored. */
  plain: string;
  expiresAt: Date;
  cardId: string;
  memberId: string;
}

/**
 * Issues (rotates) the QR of a (card, member) pair. Members get their own; app and admin keys
 * may name a bound member and otherwise issue for the owner. Viewers cannot pay, so get none.
 * `countIssue` is the per-card issue limit, counted once the caller may use the card, so nobody
 * else can use up a card's issues.
 */
export async function issueCardQr(
  { db, config, metrics }: Deps,
  caller: Caller,
  cardId: string,
  input: { ttl_seconds?: number; member_id?: string },
  countIssue: (cardId: string) => Promise<void>,
): Promise<IssuedQr> {
  const { principal } = caller;
  refuseUnreachable(principal, cardId);
  const named = principal.memberId ?? input.member_id;
  // One read: the card as cardFor judges it, and the parties the QR is for.
  const { card } = accessTo(principal, 'pay', await qrIssueCard(db, cardId, principal.memberId ?? null, named ?? null));
  const { member_status, binding_role, card_expired } = card;
  await countIssue(card.id);
  const memberId = named ?? card.owner_member_id;
  // Refused now with the code the charge would end with, rather than handing out a QR that cannot pay.
  const refused = mayAct({ ...card, is_expired: card_expired }, { actorStatus: member_status }, { role: binding_role }, 'issue-qr');
  if (refused) throw new AppError(refused.refused, refused.message, refused.details);

  const token = newQrToken();
  const ttl = input.ttl_seconds ?? config.QR_DEFAULT_TTL_S;
  // The chain's turn (which orders the issues of one card) with BEGIN, then the issue with its audit event and COMMIT: two round trips.
  const { rows } = await pipelinedTransaction<undefined, QrStateRow>(db, async (trx) => {
    const audited = await auditAppend(trx, auditInput(caller, { action: 'qr.issue', objectType: 'card', objectId: card.id, context: { member_id: memberId, ttl_seconds: ttl }, chain: qrChain(card.id, config.CARD_PARTITIONS) }));
    return { value: undefined, last: qrIssue(card.id, memberId, token.hash, ttl, audited) };
  });
  metrics.qrEvents.inc({ event: 'issued' });
  return { plain: token.plain, expiresAt: rows[0]!.expires_at, cardId: card.id, memberId };
}

/** Revokes: a member its own token; app and admin keys one member's (`memberId`) or all of the card's. Returns how many ended. */
export async function revokeCardQr({ db, config, metrics }: Deps, caller: Caller, cardId: string, input: { member_id?: string }): Promise<number> {
  const { principal } = caller;
  const { card } = await cardFor(db, principal, cardId, 'pay');
  const memberId = principal.memberId ?? input.member_id;
  const revoked = await db.transaction(async (trx) => {
    const n = await endQrTokens(trx, memberId ? { card_id: card.id, member_id: memberId } : { card_id: card.id }, 'revoked');
    await auditBy(trx, caller, { action: 'qr.revoke', objectType: 'card', objectId: card.id, context: { member_id: memberId ?? null, revoked: n }, chain: qrChain(card.id, config.CARD_PARTITIONS) });
    return n;
  });
  metrics.qrEvents.inc({ event: 'revoked' }, revoked);
  return revoked;
}

/** What a POS learns of a presented QR: why it cannot pay, or the card it would charge at its rate. */
export type QrValidation =
  | { valid: false; reason: string | undefined; expiresAt: Date | null }
  | { valid: true; expiresAt: Date; card: MemberCardRow; rateMilli: number };

/** Lets a POS check a QR before charging; it never consumes the token. An invalid one counts towards the invalid-QR anomaly rule. */
export async function validateQr(deps: Deps, merchantId: string, plain: string): Promise<QrValidation> {
  const { db, metrics } = deps;
  const qr = await findQrByHash(db, sha256(plain));
  const card = qr?.is_live ? await findCard(db, qr.card_id) : undefined;
  const reason = qrInvalidReason(qr, card);
  if (reason || !qr || !card) {
    metrics.qrEvents.inc({ event: 'invalid' });
    await countInvalidQr(deps, merchantId);
    return { valid: false, reason, expiresAt: qr?.expires_at ?? null };
  }
  return { valid: true, expiresAt: qr.expires_at, card, rateMilli: cardRateMilli(card, await loadLevels(db)) };
}

/**
 * Why a QR cannot pay, for the POS screen: unknown (never issued here), expired, used, revoked,
 * superseded (the member showed a newer one), card_not_active or card_expired; undefined if it can.
 */
function qrInvalidReason(qr: QrLookup | undefined, card: { status: string } | undefined): string | undefined {
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
