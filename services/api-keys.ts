import type { Db, PageRequest } from '../db/knex.js';
import { createApiKey, findOperatorKey, listOperatorKeys, lockActiveAdminKeys, revokeApiKey, type ApiKeyRow } from '../db/queries/api-keys.js';
import { findMerchant } from '../db/queries/merchants.js';
import { conflict, notFound } from '../domain/errors.js';
import type { Caller } from '../domain/principal.js';
import { auditBy } from './audit.js';

/** An app or admin key; the plain value is returned this once, only its hash is stored. */
export async function createOperatorKey(db: Db, caller: Caller, input: { role: 'app' | 'admin'; name: string }): Promise<{ row: ApiKeyRow; key: string }> {
  return db.transaction(async (trx) => {
    const result = await createApiKey(trx, { role: input.role, name: input.name });
    await auditBy(trx, caller, { action: 'api_key.create', objectType: 'api_key', objectId: result.row.id, context: { role: input.role, name: input.name, prefix: result.row.prefix } });
    return result;
  });
}

/** A page of a merchant's keys; 404 for a merchant that does not exist. */
export async function listMerchantKeys(db: Db, merchantId: string, page: PageRequest): Promise<ApiKeyRow[]> {
  if (!(await findMerchant(db, merchantId))) throw notFound('merchant');
  return listOperatorKeys(db, { ...page, merchantId });
}

/**
 * Revokes any operator key (effective within AUTH_CACHE_TTL_MS everywhere); never the last active
 * admin key (409). Revoking twice answers the same revoked key; only the first is audited.
 */
export async function revokeOperatorKey(db: Db, caller: Caller, id: string): Promise<ApiKeyRow> {
  return db.transaction(async (trx) => {
    const admins = await lockActiveAdminKeys(trx);
    const current = await findOperatorKey(trx, id);
    if (!current) throw notFound('api key');
    if (current.status === 'revoked') return current;
    if (current.role === 'admin' && admins.length === 1 && admins[0] === id) {
      throw conflict('This is the last active admin key: create another admin key before revoking it');
    }
    const row = await revokeApiKey(trx, id);
    await auditBy(trx, caller, { action: 'api_key.revoke', objectType: 'api_key', objectId: id, context: { role: row.role, prefix: row.prefix, merchant_id: row.merchant_id } });
    return row;
  });
}
