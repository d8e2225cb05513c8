import type { Db } from '../knex.js';
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
}

export async function findActiveKeyByHash(db: Db, hash: string): Promise<ApiKeyRow | undefined> {
  return db<ApiKeyRow>('api_keys')
    .where({ key_hash: hash, status: 'active' })
    .andWhere((q) => q.whereNull('expires_at').orWhere('expires_at', '>', db.fn.now()))
    .first();
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
