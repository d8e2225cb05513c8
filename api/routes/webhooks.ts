import { Router, type Request } from 'express';
import { z } from 'zod';
import { WEBHOOK_EVENTS } from '../../operations/index.js';
import type { Deps } from '../../app/deps.js';
import { listEventsAfter } from '../../db/queries/events.js';
import { listDeliveries, listEndpoints, type WebhookDeliveryRow, type WebhookEndpointRow } from '../../db/queries/webhooks.js';
import { createEndpoint, ownEndpoint, redeliver, removeEndpoint, rotateSecret } from '../../services/webhooks.js';
import { allow, principalOf } from '../middleware/auth.js';
import { decodeCursor, page } from '../pagination.js';
import { callerOf } from '../route-helpers.js';
import { fields, listQuery, parse } from '../../domain/validate.js';

const WEBHOOK_EVENT = z.enum(WEBHOOK_EVENTS as [string, ...string[]]);
const endpointBody = z.strictObject({ url: z.string().min(1).max(2048), events: z.array(WEBHOOK_EVENT).min(1).max(WEBHOOK_EVENTS.length) });
const deliveriesQuery = z.strictObject({ ...listQuery, endpoint_id: fields.uuid.optional(), status: z.enum(['pending', 'delivered', 'failed']).optional(), event_id: z.string().max(64).optional() });
const eventsQuery = z.strictObject({
  limit: listQuery.limit,
  cursor: z.string().regex(/^\d{1,18}$/, 'must be a cursor this API issued').optional(),
  type: WEBHOOK_EVENT.optional(),
  after_sequence: z.coerce.number().int().min(0).optional(),
});

const endpointJson = (e: WebhookEndpointRow, secret?: string) => ({
  id: e.id,
  url: e.url,
  events: e.events,
  status: e.status,
  created_at: e.created_at.toISOString(),
  previous_secret_expires_at: e.previous_secret_expires_at?.toISOString() ?? null,
  ...(secret ? { secret } : {}),
});

const deliveryJson = (d: WebhookDeliveryRow) => ({
  id: d.id,
  endpoint_id: d.endpoint_id,
  event_id: d.event_id,
  status: d.status,
  attempts: d.attempts,
  attempt_log: d.attempt_log,
  next_attempt_at: d.next_attempt_at?.toISOString() ?? null,
  delivered_at: d.delivered_at?.toISOString() ?? null,
  created_at: d.created_at.toISOString(),
});

/** Merchants' webhook endpoints, their delivery log, and the events feed (API.md "Merchants"). */
export function webhookRoutes(deps: Deps): Router {
  const router = Router();
  // The delivery log and the events feed read the replica when there is one: a lagging replica
  // shows less, never skips (the feed's cursor only moves past what it has shown).
  const { db, dbRead } = deps;
  const merchantOf = (req: Request) => principalOf(req).merchantId!;

  /** The secret is returned once. */
  router.post('/merchant/webhook-endpoints', allow('merchant'), async (req, res) => {
    const { endpoint, secret } = await createEndpoint(deps, callerOf(req), parse(endpointBody, req.body));
    res.status(201).json(endpointJson(endpoint, secret));
  });

  router.get('/merchant/webhook-endpoints', allow('merchant'), async (req, res) => {
    res.json({ data: (await listEndpoints(db, merchantOf(req))).map((e) => endpointJson(e)), next_cursor: null });
  });

  router.get('/merchant/webhook-endpoints/:id', allow('merchant'), async (req, res) => {
    res.json(endpointJson(await ownEndpoint(db, callerOf(req), String(req.params.id))));
  });

  router.delete('/merchant/webhook-endpoints/:id', allow('merchant'), async (req, res) => {
    await removeEndpoint(db, callerOf(req), String(req.params.id));
    res.status(204).end();
  });

  router.post('/merchant/webhook-endpoints/:id/rotate-secret', allow('merchant'), async (req, res) => {
    const { endpoint, secret } = await rotateSecret(deps, callerOf(req), String(req.params.id));
    res.json(endpointJson(endpoint, secret));
  });

  router.get('/merchant/webhook-deliveries', allow('merchant'), async (req, res) => {
    const q = parse(deliveriesQuery, req.query, 'query');
    const rows = await listDeliveries(dbRead, merchantOf(req), { endpointId: q.endpoint_id, status: q.status, eventId: q.event_id, limit: q.limit, cursor: decodeCursor(q.cursor) });
    res.json(page(rows, q.limit, deliveryJson));
  });

  router.post('/merchant/webhook-deliveries/:id/redeliver', allow('merchant'), async (req, res) => {
    res.status(202).json(deliveryJson(await redeliver(deps, callerOf(req), String(req.params.id))));
  });

  /** What a webhook may have missed: the merchant's events in sequence order. */
  router.get('/events', allow('merchant'), async (req, res) => {
    const q = parse(eventsQuery, req.query, 'query');
    const after = Math.max(q.after_sequence ?? 0, q.cursor ? Number(q.cursor) : 0);
    const rows = await listEventsAfter(dbRead, merchantOf(req), { after, type: q.type, limit: q.limit });
    const more = rows.length > q.limit;
    const shown = more ? rows.slice(0, q.limit) : rows;
    res.json({
      data: shown.map((e) => ({ id: e.id, type: e.type, sequence: e.sequence, created_at: e.created_at.toISOString(), data: e.data })),
      next_cursor: more ? String(shown[shown.length - 1]!.sequence) : null,
    });
  });

  return router;
}
