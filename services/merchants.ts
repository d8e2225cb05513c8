import type { Db } from '../db/knex.js';
import { createApiKey, findMerchantKey, revokeApiKey, type ApiKeyRow } from '../db/queries/api-keys.js';
import { insertMerchant, lockMerchant, type MerchantRow } from '../db/queries/merchants.js';
import { isUniqueViolation } from '../db/pg-errors.js';
import { conflict, notFound } from '../domain/errors.js';
import type { Caller } from '../domain/principal.js';
import { auditBy } from './audit.js';

export async function createMerchant(db: Db, caller: Caller, input: { code: string; name: string; fee_rate: string; settlement_mode: string }): Promise<MerchantRow> {
  return db
    .transaction(async (trx) => {
      const row = await insertMerchant(trx, input);
      await auditBy(trx, caller, { action: 'merchant.create', objectType: 'merchant', objectId: row.id, context: { code: row.code, fee_rate: input.fee_rate } });
      return row;
    })
    .catch((err: unknown) => {
      // The unique index decides, so two concurrent creates of one code cannot both win.
      if (isUniqueViolation(err)) throw conflict(`A merchant with code ${input.code} already exists`, { field: 'code' });
      throw err;
    });
}

/** A POS key for the merchant; the key itself is returned once (only its hash is stored). */
export async function createMerchantKey(db: Db, caller: Caller, merchantId: string, name?: string): Promise<{ row: ApiKeyRow; key: string }> {
  return db.transaction(async (trx) => {
    if (!(await lockMerchant(trx, merchantId))) throw notFound('merchant');
    const result = await createApiKey(trx, { role: 'merchant', merchantId, name });
    await auditBy(trx, caller, { action: 'merchant.api_key_create', objectType: 'api_key', objectId: result.row.id, context: { merchant_id: merchantId, prefix: result.row.prefix } });
    return result;
  });
}

/** Revoking twice answers the same revoked key; only the first revocation is an event. */
export async function revokeMerchantKey(db: Db, caller: Caller, merchantId: string, keyId: string): Promise<ApiKeyRow> {
  return db.transaction(async (trx) => {
    const current = await findMerchantKey(trx, merchantId, keyId);
    if (!current) throw notFound('api key');
    if (current.status === 'revoked') return current;
    const row = await revokeApiKey(trx, keyId);
    await auditBy(trx, caller, { action: 'merchant.api_key_revoke', objectType: 'api_key', objectId: keyId, context: { merchant_id: merchantId, prefix: row.prefix } });
    return row;
  });
}
