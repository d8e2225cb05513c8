import { newestFirst, type Db, type PageRequest } from '../knex.js';
import { newApiKey, type KeyRole } from '../../domain/tokens.js';

export interface ApiKeyRow {
  id: string;
  role: KeyRole;
  key_hash: string;
  prefix: string;
  name: string | null;
  merchant_id: string | null;
  member_id: string | null;
  status: string;
  expires_at: Date | null;
  created_at: Date;
  revoked_at?: Date | null;
  last_used_at?: Date | null;
}

/** A usable key with the status of the merchant or member it acts for. */
export interface ActiveKeyRow extends ApiKeyRow {
  merchant_status: 'active' | 'suspended' | null;
  member_status: 'active' | 'suspended' | 'erased' | null;
}

export async function findActiveKeyByHash(db: Db, hash: string): Promise<ActiveKeyRow | undefined> {
  return db('api_keys as k')
    .leftJoin('merchants as m', 'm.id', 'k.merchant_id')
    .leftJoin('member_profiles as p', 'p.id', 'k.member_id')
    .where({ 'k.key_hash': hash, 'k.status': 'active' })
    .andWhere((q) => q.whereNull('k.expires_at').orWhere('k.expires_at', '>', db.fn.now()))
    .first<ActiveKeyRow | undefined>('k.*', 'm.status as merchant_status', 'p.status as member_status');
}

/** Notes that a key was used, at most once a minute: the WHERE makes a burst of calls one write. */
export async function touchApiKey(db: Db, id: string): Promise<void> {
  await db('api_keys').where({ id }).andWhere((q) => q.whereNull('last_used_at').orWhere('last_used_at', '<', db.raw(`now() - interval '1 minute'`))).update({ last_used_at: db.fn.now() } as never);
}

/** Operator keys (admin, app, merchant; never member tokens), optionally of one merchant or role. */
function operatorKeys(db: Db, filter: { merchantId?: string; role?: string }) {
  const query = db<ApiKeyRow>('api_keys as k').whereIn('k.role', ['admin', 'app', 'merchant']).select('k.*');
  if (filter.merchantId) query.where('k.merchant_id', filter.merchantId);
  if (filter.role) query.where('k.role', filter.role);
  return query;
}

/** A page of operator keys, newest first. */
export async function listOperatorKeys(db: Db, f: PageRequest & { merchantId?: string; role?: string }): Promise<ApiKeyRow[]> {
  return newestFirst(db, operatorKeys(db, f), 'k', f);
}

export async function findOperatorKey(db: Db, id: string): Promise<ApiKeyRow | undefined> {
  return operatorKeys(db, {}).where('k.id', id).first();
}

/**
 * The active admin keys, locked in id order: two revocations at once queue up here (no deadlock),
 * and the second sees what the first left, so the last admin key cannot be revoked by a race.
 */
export async function lockActiveAdminKeys(trx: Db): Promise<string[]> {
  const rows: { id: string }[] = await trx('api_keys').where({ role: 'admin', status: 'active' }).orderBy('id').forUpdate().select('id');
  return rows.map((r) => r.id);
}

/** Revokes every member token of a member (e.g. a lost phone): they stop authenticating at once. */
export async function revokeMemberTokens(db: Db, memberId: string): Promise<number> {
  return db('api_keys')
    .where({ member_id: memberId, role: 'member', status: 'active' })
    .update({ status: 'revoked', revoked_at: db.fn.now() } as never);
}

/** Creates a key and returns the plain value once; only its hash is stored. */
export async function createApiKey(
  db: Db,
  input: { role: KeyRole; name?: string; merchantId?: string; memberId?: string; expiresInSeconds?: number },
): Promise<{ row: ApiKeyRow; key: string }> {
  const { key, hash, prefix } = newApiKey(input.role);
  const [row] = await db<ApiKeyRow>('api_keys')
    .insert({
      role: input.role,
      key_hash: hash,
      prefix,
      name: input.name ?? null,
      merchant_id: input.merchantId ?? null,
      member_id: input.memberId ?? null,
      expires_at: input.expiresInSeconds ? db.raw(`now() + make_interval(secs => ?)`, [input.expiresInSeconds]) : null,
    } as never)
    .returning('*');
  return { row: row!, key };
}

/** MPS_ADMIN_KEY bootstrap: makes sure an admin key with exactly this value exists. */
export async function ensureAdminKey(db: Db, key: string, hash: string, prefix: string): Promise<void> {
  await db('api_keys').insert({ role: 'admin', key_hash: hash, prefix, name: 'MPS_ADMIN_KEY' }).onConflict('key_hash').ignore();
}

export async function findMerchantKey(db: Db, merchantId: string, keyId: string): Promise<ApiKeyRow | undefined> {
  return db<ApiKeyRow>('api_keys').where({ id: keyId, merchant_id: merchantId, role: 'merchant' }).first();
}

/** Revokes for good: a revoked key never authenticates again (findActiveKeyByHash wants 'active'). */
export async function revokeApiKey(db: Db, id: string): Promise<ApiKeyRow & { revoked_at: Date | null }> {
  const [row] = await db<ApiKeyRow>('api_keys')
    .where({ id })
    .update({ status: 'revoked', revoked_at: db.raw('coalesce(revoked_at, now())') } as never)
    .returning('*');
  return row as ApiKeyRow & { revoked_at: Date | null };
}
