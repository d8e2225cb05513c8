import { prepared, runTogether, type Db, type Statement } from '../knex.js';
import { isUniqueViolation } from '../pg-errors.js';
import type { CardLimits } from '../../domain/card-limits.js';
import type { CardType } from '../../domain/discount.js';
import type { BindingRole } from './bindings.js';

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
  /** The card that took this one's place (a replacement): set only on a closed card. */
  replaced_by: string | null;
  created_at: Date;
  /** The card's own limits (null: the platform default, CARD_* settings). */
  single_payment_limit_minor: number | null;
  daily_spend_limit_minor: number | null;
  daily_payment_count: number | null;
}

export interface MemberCardRow extends CardRow {
  type: CardType;
  binding_password_hash: string | null;
  updated_at: Date;
}

export async function findCard(db: Db, id: string): Promise<MemberCardRow | undefined> {
  return db<MemberCardRow>('member_cards').where({ id }).first();
}

/** The role of the caller's binding to a card: null for a key (no member) or a member not bound to it. */
export interface CallerRole {
  caller_role: BindingRole | null;
}

/** A card with the role `memberId` (the caller's, null for a key) is bound to it with, in one read. */
export async function findCardAs(db: Db, id: string, memberId: string | null): Promise<(MemberCardRow & CallerRole) | undefined> {
  const { rows } = await prepared(db.raw<{ rows: (MemberCardRow & CallerRole)[] }>(`SELECT c.*, ${callerRoleSql} FROM member_cards c WHERE c.id = ?`, [memberId, id]));
  return rows[0];
}

/** The caller_role column of a read of member_cards `c`, its one binding `?` the caller's member id. */
export const callerRoleSql = `(SELECT role FROM card_bindings WHERE card_id = c.id AND member_id = ?::uuid) AS caller_role`;

/**
 * Locks the card row for the rest of the transaction: the serialization point of its money.
 * `is_expired` is judged by Postgres now(), never the process clock. NO KEY UPDATE, because the
 * key never changes: the API's inserts of new operations for the card (whose foreign key check
 * takes a KEY SHARE lock) then need not wait for the job in hand.
 */
export async function lockCard(trx: Db, id: string): Promise<LockedCard | undefined> {
  const [card] = await runTogether<LockedCard>(trx, lockCardStatement(id));
  return card;
}

export type LockedCard = MemberCardRow & { is_expired: boolean };

export const lockCardStatement = (id: string): Statement => ({
  sql: `SELECT *, (expires_at IS NOT NULL AND expires_at <= now()) AS is_expired FROM member_cards WHERE id = ? FOR NO KEY UPDATE`,
  bindings: [id],
});

/** A card locked as lockCardStatement locks it, with its owner's status and the values `also` names. */
export type LockedCardWith<Also extends string> = LockedCard & { owner_status: string | null } & Record<Also, unknown>;

/**
 * lockCardStatement with the owner's status and, under the names `also` gives (code constants),
 * SQL values read in the same round trip: a transaction number reserved, a check of other rows.
 * Their SQL may name the locked row as `card`.
 */
export function lockCardWith<Also extends string>(id: string, also: Record<Also, Statement>): Statement {
  const named = Object.entries<Statement>(also);
  return {
    sql: `WITH card AS (SELECT *, (expires_at IS NOT NULL AND expires_at <= now()) AS is_expired FROM member_cards WHERE id = ? FOR NO KEY UPDATE)
          SELECT card.*, (SELECT status FROM member_profiles WHERE id = card.owner_member_id) AS owner_status${named.map(([name, s]) => `, (${s.sql}) AS ${name}`).join('')}
            FROM card`,
    bindings: [id, ...named.flatMap(([, s]) => s.bindings)],
  };
}

/** Card numbers: 880 + a type digit + 12 digits from a sequence. Unique by construction. */
export const TYPE_DIGIT: Record<CardType, number> = { standard: 1, prepaid: 2, corporate: 3, voucher: 4 };

export async function insertCard(
  db: Db,
  card: {
    type: CardType;
    owner_member_id: string;
    fixed_discount?: string | null;
    face_value_minor?: number | null;
    binding_password_hash?: string | null;
    expires_at?: string | Date | null;
  },
): Promise<MemberCardRow> {
  // 880 + type digit + 11 random digits + a Luhn check digit. In a savepoint, so the rare clash
  // with an existing number is tried again with another instead of failing the caller's transaction.
  for (let attempt = 1; ; attempt++) {
    try {
      return await db.transaction(async (sp) => {
        const [row] = await sp<MemberCardRow>('member_cards')
          .insert({ ...card, card_no: sp.raw(newCardNoSql, [TYPE_DIGIT[card.type]]) } as never)
          .returning('*');
        return row!;
      });
    } catch (err) {
      if (attempt >= 5 || !isUniqueViolation(err, 'member_cards_card_no_unique')) throw err;
    }
  }
}

/** SQL for a new card number (880 + the type's digit + 11 random digits + Luhn), as insertCard draws it; binds the type digit. */
export const newCardNoSql = `mps_luhn('880' || ? || mps_random_digits(11))`;

/** newCardNoSql for a card of the type of the row named `card` (lockCardWith). */
export const newCardNoLikeSql = `mps_luhn('880' || (CASE card.type ${Object.entries(TYPE_DIGIT).map(([type, digit]) => `WHEN '${type}' THEN '${digit}'`).join(' ')} END) || mps_random_digits(11))`;

/**
 * The INSERT of a card that takes over another's (a replacement): same type, owner, discount, face
 * value, binding password and expiry, a new number and id, and the balance, points, level and
 * status it starts with (its ledger rows go with it: db/queries/ledgers.ts openingLedger). A clash
 * of the number is a unique violation, retried with the batch like any other.
 */
export function replacementCardInsert(trx: Db, old: MemberCardRow, card: { id: string; card_no: string; balance_minor: number; points: number; level: number; status: string }): Statement {
  return trx('member_cards')
    .insert({
      ...card,
      type: old.type,
      owner_member_id: old.owner_member_id,
      fixed_discount: old.fixed_discount,
      face_value_minor: old.face_value_minor,
      binding_password_hash: old.binding_password_hash,
      expires_at: old.expires_at,
    })
    .toSQL();
}

export async function findCardByNo(db: Db, cardNo: string): Promise<MemberCardRow | undefined> {
  return db<MemberCardRow>('member_cards').where({ card_no: cardNo }).first();
}

/** Cards a member owns or is bound to, with the member's binding role on each (owner for owned cards). */
export async function listCardsOfMember(db: Db, memberId: string): Promise<(MemberCardRow & { binding_role: string })[]> {
  return db('member_cards as c')
    .leftJoin('card_bindings as b', function () {
      this.on('b.card_id', '=', 'c.id').andOnVal('b.member_id', '=', memberId);
    })
    .where('c.owner_member_id', memberId)
    .orWhereNotNull('b.id')
    .select('c.*', db.raw(`coalesce(b.role, 'owner') AS binding_role`))
    .orderBy([{ column: 'c.created_at' }, { column: 'c.id' }]);
}

/** Moves a card's status only from `from`; undefined when the card was not in that status. */
export async function setCardStatus(trx: Db, id: string, from: string, to: string): Promise<MemberCardRow | undefined> {
  const [row] = await trx<MemberCardRow>('member_cards').where({ id, status: from }).update({ status: to, updated_at: trx.fn.now() } as never).returning('*');
  return row;
}

/**
 * Sets every card's stored level to the highest level its points reach under the current
 * membership_levels (the same rule as domain/levels.ts levelFor). Returns how many cards moved.
 */
export async function recomputeCardLevels(trx: Db): Promise<number> {
  return trx.raw(
    `UPDATE member_cards c SET level = l.level, updated_at = now()
       FROM (SELECT c2.id, (SELECT level FROM membership_levels WHERE min_points <= c2.points ORDER BY min_points DESC LIMIT 1) AS level
               FROM member_cards c2) l
      WHERE l.id = c.id AND l.level IS NOT NULL AND c.level IS DISTINCT FROM l.level`,
  ).then((r: { rowCount: number }) => r.rowCount);
}

/** The card's own limits as domain/card-limits.ts names them. */
export const ownLimits = (card: Pick<CardRow, 'single_payment_limit_minor' | 'daily_spend_limit_minor' | 'daily_payment_count'>): CardLimits => ({
  single_payment_limit: card.single_payment_limit_minor,
  daily_spend_limit: card.daily_spend_limit_minor,
  daily_payment_count: card.daily_payment_count,
});

/** Sets the limits named in `change` (null: back to the platform default); the caller holds the card's lock. */
export async function setCardLimits(trx: Db, id: string, change: Partial<CardLimits>): Promise<MemberCardRow> {
  const columns = {
    ...(change.single_payment_limit !== undefined ? { single_payment_limit_minor: change.single_payment_limit } : {}),
    ...(change.daily_spend_limit !== undefined ? { daily_spend_limit_minor: change.daily_spend_limit } : {}),
    ...(change.daily_payment_count !== undefined ? { daily_payment_count: change.daily_payment_count } : {}),
  };
  const [row] = await trx<MemberCardRow>('member_cards')
    .where({ id })
    .update({ ...columns, updated_at: trx.fn.now() } as never)
    .returning('*');
  return row!;
}

export async function setBindingPasswordHash(db: Db, cardId: string, hash: string): Promise<void> {
  await db('member_cards').where({ id: cardId }).update({ binding_password_hash: hash });
}
