import { Router } from 'express';
import { z } from 'zod';
import type { Deps } from '../../app/deps.js';
import { createApiKey, lockActiveAdminKeys, operatorKeys, revokeApiKey, type ApiKeyRow } from '../../db/queries/api-keys.js';
import { newestFirst } from '../../db/knex.js';
import { AppError, notFound } from '../../domain/errors.js';
import { allow } from '../middleware/auth.js';
import { decodeCursor, page } from '../pagination.js';
import { idParam, recordAudit } from '../route-helpers.js';
import { fields, listQuery, parse } from '../../domain/validate.js';
import { apiKeyJson } from '../views.js';

const createBody = z.strictObject({ role: z.enum(['app', 'admin']), name: fields.text(100) });
const listKeysQuery = z.strictObject({ ...listQuery, role: z.enum(['admin', 'app', 'merchant']).optional() });

/**
 * Operator keys without SQL (API.md "Directory, keys and reports"): the member-app backend's app
 * key and further admin keys are made, listed and revoked here; merchant keys under their merchant.
 * Member tokens are not listed: they are per member and short-lived.
 */
export function apiKeyRoutes(deps: Deps): Router {
  const router = Router();
  const { db } = deps;

  router.post('/api-keys', allow('admin'), async (req, res) => {
    const body = parse(createBody, req.body);
    const created = await db.transaction(async (trx) => {
      const result = await createApiKey(trx, { role: body.role, name: body.name });
      await recordAudit(trx, req, { action: 'api_key.create', objectType: 'api_key', objectId: result.row.id, context: { role: body.role, name: body.name, prefix: result.row.prefix } });
      return result;
    });
    // The only time the key is shown: only its hash is stored.
    res.status(201).json({ ...apiKeyJson(created.row), key: created.key });
  });

  router.get('/api-keys', allow('admin'), async (req, res) => {
    const q = parse(listKeysQuery, req.query, 'query');
    const rows = await newestFirst(db, operatorKeys(db, { role: q.role }), 'k', { limit: q.limit, cursor: decodeCursor(q.cursor) });
    res.json(page(rows, q.limit, apiKeyJson));
  });

  router.get('/merchants/:id/api-keys', allow('admin'), async (req, res) => {
    const merchantId = idParam(req, 'id', 'merchant');
    const q = parse(z.strictObject(listQuery), req.query, 'query');
    if (!(await db('merchants').where({ id: merchantId }).first('id'))) throw notFound('merchant');
    const rows = await newestFirst(db, operatorKeys(db, { merchantId }), 'k', { limit: q.limit, cursor: decodeCursor(q.cursor) });
    res.json(page(rows, q.limit, apiKeyJson));
  });

  /** Revokes any operator key (effective within AUTH_CACHE_TTL_MS everywhere); never the last active admin key. */
  router.delete('/api-keys/:id', allow('admin'), async (req, res) => {
    const id = idParam(req, 'id', 'api key');
    const key = await db.transaction(async (trx) => {
      const admins = await lockActiveAdminKeys(trx);
      const current: ApiKeyRow | undefined = await operatorKeys(trx, {}).where('k.id', id).first();
      if (!current) throw notFound('api key');
      if (current.status === 'revoked') return current;
      if (current.role === 'admin' && admins.length === 1 && admins[0] === id) {
        throw new AppError('CONFLICT', 'This is the last active admin key: create another admin key before revoking it');
      }
      const row = await revokeApiKey(trx, id);
      await recordAudit(trx, req, { action: 'api_key.revoke', objectType: 'api_key', objectId: id, context: { role: row.role, prefix: row.prefix, merchant_id: row.merchant_id } });
      return row;
    });
    res.json(apiKeyJson(key));
  });

  return router;
}
