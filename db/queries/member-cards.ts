import type { Db } from '../knex.js';
import type { CardRow } from '../../api/serializers.js';
import type { CardType } from '../../domain/discount.js';

export interface MemberCardRow extends CardRow {
  type: CardType;
  binding_password_hash: string | null;
  updated_at: Date;
}

export async function findCard(db: Db, id: string): Promise<MemberCardRow | undefined> {
  return db<MemberCardRow>('member_cards').where({ id }).first();
}

/** Locks the card row for the rest of the transaction: the serialization point of its money. */
export async function lockCard(trx: Db, id: string): Promise<MemberCardRow | undefined> {
  return trx<MemberCardRow>('member_cards').where({ id }).forUpdate().first();
}

/** Card numbers: 880 + a type digit + 12 digits from a sequence. Unique by construction. */
const TYPE_DIGIT: Record<CardType, number> = { standard: 1, prepaid: 2, corporate: 3, voucher: 4 };

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
  const [row] = await db<MemberCardRow>('member_cards')
    .insert({
      ...card,
      card_no: db.raw(`'880' || ? || lpad(nextval('card_no_seq')::text, 12, '0')`, [TYPE_DIGIT[card.type]]),
    } as never)
    .returning('*');
  return row!;
}
