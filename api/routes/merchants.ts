import { Router } from 'express';
import type { Deps } from '../../app/deps.js';
import { createApiKey, findMerchantKey, revokeApiKey } from '../../db/queries/api-keys.js';
import { findMerchant, insertMerchant, lockMerchant } from '../../db/queries/merchants.js';
import { isUniqueViolation } from '../../db/pg-errors.js';
import { conflict, notFound } from '../../domain/errors.js';
import { allow } from '../middleware/auth.js';
import { callerOf, idParam, recordAudit } from '../route-helpers.js';
import { changeStatus, statusActions } from '../../services/status.js';
import { reasonBody } from '../schemas/common.js';
import { createApiKeyBody, createMerchantBody } from '../schemas/merchants.js';
import { parse } from '../../domain/validate.js';
import { apiKeyJson, merchantJson } from '../views.js';

export function merchantRoutes(deps: Deps): Router {
  const router = Router();
  const { db } = deps;

  router.post('/merchants', allow('admin'), async (req, res) => {
    const body = parse(createMerchantBody, req.body);
    const merchant = await db
      .transaction(async (trx) => {
        const row = await insertMerchant(trx, body);
        await recordAudit(trx, req, { action: 'merchant.create', objectType: 'merchant', objectId: row.id, context: { code: row.code, fee_rate: body.fee_rate } });
        return row;
      })
      .catch((err: unknown) => {
        // The unique index decides, so two concurrent creates of one code cannot both win.
        if (isUniqueViolation(err)) throw conflict(`A merchant with code ${body.code} already exists`, { field: 'code' });
        throw err;
      });
    res.status(201).json(merchantJson(merchant));
  });

  router.get('/merchants/:id', allow('admin'), async (req, res) => {
    const merchant = await findMerchant(db, idParam(req, 'id', 'merchant'));
    if (!merchant) throw notFound('merchant');
    res.json(merchantJson(merchant));
  });

  for (const action of statusActions('merchant')) {
    router.post(`/merchants/:id/${action}`, allow('admin'), async (req, res) => {
      const { reason } = parse(reasonBody, req.body);
      const merchant = await changeStatus(db, callerOf(req), 'merchant', action, idParam(req, 'id', 'merchant'), reason);
      res.json(merchantJson(merchant));
    });
  }

  router.post('/merchants/:id/api-keys', allow('admin'), async (req, res) => {
    const id = idParam(req, 'id', 'merchant');
    const body = parse(createApiKeyBody, req.body);
    const created = await db.transaction(async (trx) => {
      if (!(await lockMerchant(trx, id))) throw notFound('merchant');
      const result = await createApiKey(trx, { role: 'merchant', merchantId: id, name: body.name });
      await recordAudit(trx, req, { action: 'merchant.api_key_create', objectType: 'api_key', objectId: result.row.id, context: { merchant_id: id, prefix: result.row.prefix } });
      return result;
    });
    // The only time the key is shown: only its hash is stored.
    res.status(201).json({ ...apiKeyJson(created.row), key: created.key });
  });

  router.delete('/merchants/:id/api-keys/:key_id', allow('admin'), async (req, res) => {
    const merchantId = idParam(req, 'id', 'merchant');
    const keyId = idParam(req, 'key_id', 'api key');
    const key = await db.transaction(async (trx) => {
      const current = await findMerchantKey(trx, merchantId, keyId);
      if (!current) throw notFound('api key');
      // Revoking twice answers the same revoked key; only the first revocation is an event.
      if (current.status === 'revoked') return current;
      const row = await revokeApiKey(trx, keyId);
      await recordAudit(trx, req, { action: 'merchant.api_key_revoke', objectType: 'api_key', objectId: keyId, context: { merchant_id: merchantId, prefix: row.prefix } });
      return row;
    });
    res.json(apiKeyJson(key));
  });

  return router;
}
