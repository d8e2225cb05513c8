import { Router } from 'express';
import type { Deps } from '../../app/deps.js';
import { findMerchant } from '../../db/queries/merchants.js';
import { notFound } from '../../domain/errors.js';
import { createMerchant, createMerchantKey, revokeMerchantKey } from '../../services/merchants.js';
import { allow } from '../middleware/auth.js';
import { callerOf, idParam } from '../route-helpers.js';
import { changeStatus, statusActions } from '../../services/status.js';
import { reasonBody } from '../schemas/common.js';
import { createApiKeyBody, createMerchantBody } from '../schemas/merchants.js';
import { parse } from '../../domain/validate.js';
import { apiKeyJson, merchantJson } from '../views.js';

export function merchantRoutes(deps: Deps): Router {
  const router = Router();
  const { db } = deps;

  router.post('/merchants', allow('admin'), async (req, res) => {
    res.status(201).json(merchantJson(await createMerchant(db, callerOf(req), parse(createMerchantBody, req.body))));
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
    const { name } = parse(createApiKeyBody, req.body);
    const created = await createMerchantKey(db, callerOf(req), id, name);
    res.status(201).json({ ...apiKeyJson(created.row), key: created.key });
  });

  router.delete('/merchants/:id/api-keys/:key_id', allow('admin'), async (req, res) => {
    res.json(apiKeyJson(await revokeMerchantKey(db, callerOf(req), idParam(req, 'id', 'merchant'), idParam(req, 'key_id', 'api key'))));
  });

  return router;
}
