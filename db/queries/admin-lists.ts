import { newestFirst, oneValueOf, type Db, type PageRequest } from '../knex.js';
import type { MemberCardRow } from './member-cards.js';
import type { MerchantRow } from './merchants.js';
import type { OperationRecord } from './operations.js';

// The admin's cross-tenant lists (API.md "Directory, keys and reports"), newest first on
// (created_at, id) like every list. Each filter has an index that serves it at the bench's scale
// (the migrations index_admin_*): see the comments there.

const literalLike = (text: string) => text.replace(/[\\%_]/g, (c) => `\\${c}`);

export interface MerchantListFilter extends PageRequest {
  status?: MerchantRow['status'];
  /** A code prefix or a part of the name, case-insensitive. */
  q?: string;
}

export async function listMerchants(db: Db, f: MerchantListFilter): Promise<(MerchantRow & { cursor_t: string })[]> {
  const q = db('merchants as m').select('m.*');
  newestFirst(db, q, 'm', f);
  if (f.status) q.where('m.status', f.status);
  if (f.q !== undefined) {
    const text = literalLike(f.q);
    q.where((w) => w.whereRaw(`m.code LIKE ? ESCAPE '\\'`, [`${text.toUpperCase()}%`]).orWhereRaw(`lower(m.name) LIKE ? ESCAPE '\\'`, [`%${text.toLowerCase()}%`]));
  }
  return q;
}

export interface CardListFilter extends PageRequest {
  /** Cards this member holds: owns or is bound to (every owner has its owner binding). */
  memberId?: string;
  status?: string;
  type?: string;
}

export type ListedCard = MemberCardRow & { cursor_t: string; binding_role?: string };

export async function listCards(db: Db, f: CardListFilter): Promise<ListedCard[]> {
  const q = db('member_cards as c').select('c.*');
  // A member's few cards are filtered; across members, a type's come from its index.
  if (f.type && !f.memberId) oneValueOf(q, 'c.type', f.type);
  newestFirst(db, q, 'c', f);
  if (f.memberId) q.join('card_bindings as b', 'b.card_id', 'c.id').where('b.member_id', f.memberId).select('b.role as binding_role');
  if (f.status) q.where('c.status', f.status);
  if (f.type && f.memberId) q.where('c.type', f.type);
  return q;
}

export interface OperationListFilter extends PageRequest {
  status?: string;
  /** One type; without it, every one of `types`. */
  type?: string;
  /** Every operation type (the registry's: operations/index.ts, which db/ does not import). */
  types: readonly string[];
  /** Accepted more than this many seconds ago, by Postgres time. */
  olderThanS?: number;
}

/** What an on-call admin sees of an operation: never its QR hash, request hash or idempotency key. */
export type ListedOperation = Pick<
  OperationRecord,
  'id' | 'type' | 'status' | 'merchant_id' | 'member_id' | 'card_id' | 'partition' | 'amount_minor' | 'payment_method' | 'original_tx_no' | 'error_code' | 'error_message' | 'result' | 'attempts' | 'actor_role' | 'created_at' | 'started_at' | 'completed_at'
> & { cursor_t: string; enqueue_count: number };

const LISTED_OPERATION_COLUMNS = ['id', 'type', 'status', 'merchant_id', 'member_id', 'card_id', 'partition', 'amount_minor', 'payment_method', 'original_tx_no', 'error_code', 'error_message', 'result', 'attempts', 'enqueue_count', 'actor_role', 'created_at', 'started_at', 'completed_at'];

/**
 * Operations newest first. Of one type, one scan of operations_type_newest (or of a status's
 * partial index, when that is smaller); of all types, the newest page of each type merged: one
 * short index scan per type, where one scan over the whole table would need a sort.
 */
export async function listOperations(db: Db, f: OperationListFilter): Promise<ListedOperation[]> {
  const ofType = (type: string) => {
    const q = db('operations as o').select(LISTED_OPERATION_COLUMNS.map((c) => `o.${c}`)).where('o.type', type);
    newestFirst(db, q, 'o', f, 'text');
    if (f.status) q.where('o.status', f.status);
    if (f.olderThanS !== undefined) q.whereRaw('o.created_at < now() - make_interval(secs => ?)', [f.olderThanS]);
    return q;
  };
  if (f.type) return ofType(f.type);
  return db
    .select('*')
    .from(db.unionAll(f.types.map(ofType), true).as('o'))
    .orderBy([
      { column: 'o.created_at', order: 'desc' },
      { column: 'o.id', order: 'desc' },
    ])
    .limit(f.limit + 1);
}
