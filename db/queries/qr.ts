import { prepared, together, type Db, type Statement } from '../knex.js';
import type { BindingRole } from './bindings.js';
import { callerRoleSql, type CallerRole, type MemberCardRow } from './member-cards.js';

export interface QrStateRow {
  card_id: string;
  member_id: string;
  token_hash: string;
  issued_at: Date;
  expires_at: Date;
}

/** The live-token row of a hash, with liveness and its card's expiry judged by Postgres now(). */
/** What is known of a presented token: its live state, or how its history says it ended. */
export interface QrLookup {
  card_id: string;
  expires_at: Date;
  is_live: boolean;
  card_expired: boolean;
  /** used, rotated, revoked or expired once the token is no longer live; null while it is. */
  end_reason: 'used' | 'rotated' | 'revoked' | 'expired' | null;
}

/** A token by its hash, live or ended (history is kept QR_HISTORY_DAYS), with the card's expiry judged by Postgres time. */
export async function findQrByHash(db: Db, hash: string): Promise<QrLookup | undefined> {
  const { rows } = await prepared(db.raw<{ rows: QrLookup[] }>(
    `SELECT c.id AS card_id, coalesce(q.expires_at, h.expires_at) AS expires_at,
            coalesce(q.expires_at > now(), false) AS is_live,
            coalesce(c.expires_at <= now(), false) AS card_expired,
            CASE WHEN q.expires_at > now() THEN NULL WHEN q.token_hash IS NOT NULL THEN 'expired' ELSE coalesce(h.end_reason, 'expired') END AS end_reason
       FROM (SELECT ?::text AS token_hash) t
       LEFT JOIN card_qr_state q ON q.token_hash = t.token_hash
       LEFT JOIN card_qr_history h ON q.token_hash IS NULL AND h.token_hash = t.token_hash
       JOIN member_cards c ON c.id = coalesce(q.card_id, h.card_id)`,
    [hash],
  ));
  return rows[0];
}

/** Who is involved when a member's QR is presented at a merchant (columns of cardWithQrSql). */
export interface QrParties {
  is_expired: boolean;
  /** The presented token's row, when it is live: null columns when it is not. */
  qr_card_id: string | null;
  qr_member_id: string | null;
  qr_expires_at: Date | null;
  merchant_status: string;
  owner_status: string;
  payer_status: string | null;
  payer_name: string | null;
  payer_role: string | null;
}

/**
 * The SELECT of an operation presented with a member's QR at a merchant (a charge, a top-up at the
 * till): the card `:card` locked, then the token `:hash` (locked when `lockQr`: a charge consumes
 * it), with the merchant `:merchant`, the owner, the presenting member and its binding, and
 * `columns` / `joins` of the caller's own. One round trip for all of it.
 */
export function cardWithQrSql(options: { columns: string; joins?: string; lockQr: boolean }): string {
  return `WITH card AS (
           SELECT *, (expires_at IS NOT NULL AND expires_at <= now()) AS is_expired FROM member_cards WHERE id = :card FOR NO KEY UPDATE
         )
         SELECT card.*, q.card_id AS qr_card_id, q.member_id AS qr_member_id, q.expires_at AS qr_expires_at,
                (SELECT status FROM merchants WHERE id = :merchant) AS merchant_status,
                (SELECT status FROM member_profiles WHERE id = card.owner_member_id) AS owner_status,
                (SELECT status FROM member_profiles WHERE id = q.member_id) AS payer_status,
                (SELECT name FROM member_profiles WHERE id = q.member_id) AS payer_name,
                (SELECT role FROM card_bindings b WHERE b.card_id = q.card_id AND b.member_id = q.member_id) AS payer_role,
                ${options.columns}
           FROM card LEFT JOIN LATERAL (SELECT * FROM card_qr_state WHERE token_hash = :hash${options.lockQr ? ' FOR UPDATE' : ''}) q ON true
           ${options.joins ?? ''}`;
}

/**
 * The statement that replaces the (card, member) token, with `riders` (the issue's audit event)
 * in it; the old token, if any, ends in history as rotated. Its row is the new token's state. The
 * old token is the one the statement's snapshot shows: take the card's audit chain turn first
 * (services/qr.ts), so that an issue racing this one for the same card has committed, or waits,
 * before this one looks.
 */
export function qrIssue(cardId: string, memberId: string, hash: string, ttlSeconds: number, riders: Statement[] = []): Statement {
  const issue: Statement = {
    sql: `WITH old AS (SELECT token_hash FROM card_qr_state WHERE card_id = ? AND member_id = ?),
          rotated AS (UPDATE card_qr_history h SET end_reason = 'rotated' FROM old WHERE h.token_hash = old.token_hash AND h.end_reason IS NULL),
          issued AS (
            INSERT INTO card_qr_state (card_id, member_id, token_hash, expires_at) VALUES (?, ?, ?, now() + make_interval(secs => ?))
            ON CONFLICT (card_id, member_id) DO UPDATE SET token_hash = excluded.token_hash, issued_at = excluded.issued_at, expires_at = excluded.expires_at
            RETURNING *),
          logged AS (INSERT INTO card_qr_history (card_id, member_id, token_hash, issued_at, expires_at) SELECT card_id, member_id, token_hash, issued_at, expires_at FROM issued)
     SELECT * FROM issued`,
    bindings: [cardId, memberId, cardId, memberId, hash, ttlSeconds],
  };
  return together(issue, riders);
}

/**
 * A charge's use of its single-use token (held under the charge's row lock, so it is live): the
 * token leaves the live table and its history row says when it was used.
 */
export function qrUse(trx: Db, tokenHash: string): Statement[] {
  return [
    trx('card_qr_state').where({ token_hash: tokenHash }).del().toSQL(),
    trx('card_qr_history').where({ token_hash: tokenHash, end_reason: null }).update({ end_reason: 'used', used_at: trx.fn.now() }).toSQL(),
  ];
}

/**
 * endQrTokens of one card as statements to run with an operation's other writes (they share one
 * snapshot: the history rows marked are those of the tokens live before them).
 */
export function qrEnd(trx: Db, cardId: string, reason: 'revoked'): Statement[] {
  return [
    trx('card_qr_history')
      .whereNull('end_reason')
      .whereIn('token_hash', trx('card_qr_state').select('token_hash').where({ card_id: cardId }))
      .update({ end_reason: reason, revoked_at: trx.fn.now() })
      .toSQL(),
    trx('card_qr_state').where({ card_id: cardId }).del().toSQL(),
  ];
}

/** Removes live tokens matching `where` and records why in their history rows. Returns how many. */
export async function endQrTokens(trx: Db, where: Partial<Pick<QrStateRow, 'card_id' | 'member_id' | 'token_hash'>>, reason: 'used' | 'rotated' | 'revoked' | 'expired'): Promise<number> {
  const remove = trx<QrStateRow>('card_qr_state').where(where).del().returning('token_hash').toSQL();
  const { rows } = await trx.raw<{ rows: { n: number }[] }>(
    `WITH ended AS (${remove.sql}), marked AS (
       UPDATE card_qr_history h
          SET end_reason = ?,
              used_at = CASE WHEN ? = 'used' THEN now() ELSE h.used_at END,
              revoked_at = CASE WHEN ? = 'revoked' THEN now() ELSE h.revoked_at END
         FROM ended WHERE h.token_hash = ended.token_hash AND h.end_reason IS NULL
       RETURNING 1
     )
     SELECT count(*)::bigint AS n FROM ended`,
    [...remove.bindings, reason, reason, reason],
  );
  return rows[0]!.n;
}

/** What a QR issue reads, in one round trip: the card with the caller's binding role (services/card-access.ts), and the status and binding role of the member the QR is for. */
export type QrIssueCard = MemberCardRow & CallerRole & { member_status: string | null; binding_role: BindingRole | null; card_expired: boolean };

/** The card and the parties of a QR issue for `memberId` (null: the card's owner), read as `callerId` (null for a key). */
export async function qrIssueCard(db: Db, cardId: string, callerId: string | null, memberId: string | null): Promise<QrIssueCard | undefined> {
  const { rows } = await prepared(db.raw<{ rows: QrIssueCard[] }>(
    `SELECT c.*, ${callerRoleSql},
            (SELECT status FROM member_profiles WHERE id = coalesce(?::uuid, c.owner_member_id)) AS member_status,
            (SELECT role FROM card_bindings WHERE card_id = c.id AND member_id = coalesce(?::uuid, c.owner_member_id)) AS binding_role,
            coalesce(c.expires_at <= now(), false) AS card_expired
       FROM member_cards c WHERE c.id = ?`,
    [callerId, memberId, memberId, cardId],
  ));
  return rows[0];
}
