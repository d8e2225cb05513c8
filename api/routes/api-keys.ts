import { Router } from 'express';
import { z } from 'zod';
import type { Deps } from '../../app/deps.js';
import { listOperatorKeys } from '../../db/queries/api-keys.js';
import { createOperatorKey, listMerchantKeys, revokeOperatorKey } from '../../services/api-keys.js';
import { allow } from '../middleware/auth.js';
import { decodeCursor, page } from '../pagination.js';
import { callerOf, idParam } from '../route-helpers.js';
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
    const created = await createOperatorKey(db, callerOf(req), parse(createBody, req.body));
    // The only time the key is shown: only its hash is stored.
    res.status(201).json({ ...apiKeyJson(created.row), key: created.key });
  });

  router.get('/api-keys', allow('admin'), async (req, res) => {
    const q = parse(listKeysQuery, req.query, 'query');
    const rows = await listOperatorKeys(db, { role: q.role, limit: q.limit, cursor: decodeCursor(q.cursor) });
    res.json(page(rows, q.limit, apiKeyJson));
  });

  router.get('/merchants/:id/api-keys', allow('admin'), async (req, res) => {
    const merchantId = idParam(req, 'id', 'merchant');
    const q = parse(z.strictObject(listQuery), req.query, 'query');
    const rows = await listMerchantKeys(db, merchantId, { limit: q.limit, cursor: decodeCursor(q.cursor) });
    res.json(page(rows, q.limit, apiKeyJson));
  });

  router.delete('/api-keys/:id', allow('admin'), async (req, res) => {
    res.json(apiKeyJson(await revokeOperatorKey(db, callerOf(req), idParam(req, 'id', 'api key'))));
  });

  return router;
}
