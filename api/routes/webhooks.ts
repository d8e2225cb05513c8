import { Router, type Request } from 'express';
import { z } from 'zod';
import { WEBHOOK_EVENTS } from '../../operations/index.js';
import type { Deps } from '../../app/deps.js';
import { AppError, notFound } from '../../domain/errors.js';
import { seal } from '../../domain/secret-box.js';
import { randomSecret } from '../../domain/tokens.js';
import { appendAudit } from '../../db/queries/audit-events.js';
import {
  findDelivery,
  findEndpoint,
  insertEndpoint,
  listEndpoints,
  rotateEndpointSecret,
  type WebhookDeliveryRow,
  type WebhookEndpointRow,
} from '../../db/queries/webhooks.js';
import { resolveWebhookTarget } from '../../jobs/webhook-target.js';
import { webhookJobOptions } from '../../jobs/queues.js';
import { isUuid } from '../../services/card-access.js';
import { newestFirst } from '../../db/knex.js';
import { allow, principalOf } from '../middleware/auth.js';
import { decodeCursor, page } from '../pagination.js';
import { fields, listQuery, parse } from '../../domain/validate.js';

const WEBHOOK_EVENT = z.enum(WEBHOOK_EVENTS as [string, ...string[]]);
const SECRET_GRACE_HOURS = 24;

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
  const { db, dbRead, config } = deps;

  const encryptionKey = () => {
    if (!config.ENCRYPTION_KEY) throw new AppError('UNAVAILABLE', 'Webhooks need ENCRYPTION_KEY to be configured');
    return config.ENCRYPTION_KEY;
  };
  const merchantOf = (req: Request) => principalOf(req).merchantId!;
  const audit = (req: Request, action: string, objectId: string, context: Record<string, unknown> = {}) => {
    const p = principalOf(req);
    return { actorType: 'api_key' as const, actorId: p.keyId, role: p.role, action, objectType: 'webhook_endpoint', objectId, context, requestId: req.id, ip: req.ip };
  };
  const ownEndpoint = async (req: Request) => {
    const id = String(req.params.id);
    const endpoint = isUuid(id) ? await findEndpoint(db, id, merchantOf(req)) : undefined;
    if (!endpoint) throw notFound('webhook endpoint');
    return endpoint;
  };

  /** The secret is returned once; it is kept encrypted because MPS needs it in clear to sign. */
  router.post('/merchant/webhook-endpoints', allow('merchant'), async (req, res) => {
    const body = parse(endpointBody, req.body);
    const key = encryptionKey();
    await resolveWebhookTarget(body.url, config.WEBHOOK_ALLOW_INSECURE);
    const secret = `whsec_${randomSecret(32)}`;
    const endpoint = await db.transaction(async (trx) => {
      // The merchant row lock serializes registrations, so two at once cannot both pass the cap.
      await trx('merchants').where({ id: merchantOf(req) }).forUpdate().first('id');
      const [counted] = await trx('webhook_endpoints').where({ merchant_id: merchantOf(req) }).count<{ n: string }[]>({ n: '*' });
      if (Number(counted?.n) >= config.WEBHOOK_MAX_ENDPOINTS) {
        throw new AppError('CONFLICT', `A merchant may have at most ${config.WEBHOOK_MAX_ENDPOINTS} webhook endpoints; delete one first`, { limit: config.WEBHOOK_MAX_ENDPOINTS });
      }
      const row = await insertEndpoint(trx, { merchant_id: merchantOf(req), url: body.url, events: [...new Set(body.events)], secret_enc: seal(secret, key) });
      await appendAudit(trx, audit(req, 'webhook_endpoint.create', row.id, { url: row.url, events: row.events }));
      return row;
    });
    res.status(201).json(endpointJson(endpoint, secret));
  });

  router.get('/merchant/webhook-endpoints', allow('merchant'), async (req, res) => {
    res.json({ data: (await listEndpoints(db, merchantOf(req))).map((e) => endpointJson(e)), next_cursor: null });
  });

  router.get('/merchant/webhook-endpoints/:id', allow('merchant'), async (req, res) => {
    res.json(endpointJson(await ownEndpoint(req)));
  });

  router.delete('/merchant/webhook-endpoints/:id', allow('merchant'), async (req, res) => {
    const endpoint = await ownEndpoint(req);
    await db.transaction(async (trx) => {
      await trx('webhook_endpoints').where({ id: endpoint.id }).del();
      await appendAudit(trx, audit(req, 'webhook_endpoint.delete', endpoint.id));
    });
    res.status(204).end();
  });

  /** A new secret signs from now on; the old one still signs (a second v1) for 24 h. */
  router.post('/merchant/webhook-endpoints/:id/rotate-secret', allow('merchant'), async (req, res) => {
    const endpoint = await ownEndpoint(req);
    const secret = `whsec_${randomSecret(32)}`;
    const rotated = await db.transaction(async (trx) => {
      const row = await rotateEndpointSecret(trx, endpoint.id, seal(secret, encryptionKey()), SECRET_GRACE_HOURS);
      await appendAudit(trx, audit(req, 'webhook_endpoint.rotate_secret', endpoint.id));
      return row!;
    });
    res.json(endpointJson(rotated, secret));
  });

  router.get('/merchant/webhook-deliveries', allow('merchant'), async (req, res) => {
    const q = parse(deliveriesQuery, req.query, 'query');
    // The delivery log and the events feed read the replica when there is one: a lagging replica
    // shows less, never skips (the feed's cursor only moves past what it has shown).
    const query = newestFirst(
      dbRead,
      dbRead<WebhookDeliveryRow>('webhook_deliveries as d').join('webhook_endpoints as w', 'w.id', 'd.endpoint_id').where('w.merchant_id', merchantOf(req)).select('d.*'),
      'd',
      { limit: q.limit, cursor: decodeCursor(q.cursor) },
    );
    if (q.endpoint_id) query.where('d.endpoint_id', q.endpoint_id);
    if (q.status) query.where('d.status', q.status);
    if (q.event_id) query.where('d.event_id', q.event_id);
    res.json(page(await query, q.limit, deliveryJson));
  });

  /** Sends the event again now, whatever the delivery's state; the attempt joins its log. */
  router.post('/merchant/webhook-deliveries/:id/redeliver', allow('merchant'), async (req, res) => {
    const id = String(req.params.id);
    const delivery = isUuid(id) ? await findDelivery(db, id) : undefined;
    const endpoint = delivery ? await findEndpoint(db, delivery.endpoint_id, merchantOf(req)) : undefined;
    if (!delivery || !endpoint) throw notFound('webhook delivery');
    if (endpoint.status !== 'active') throw new AppError('CONFLICT', 'The endpoint is disabled');
    // Redelivery must not become a way to send requests at will to a target delivery refuses.
    await resolveWebhookTarget(endpoint.url, config.WEBHOOK_ALLOW_INSECURE);
    const [row] = await db<WebhookDeliveryRow>('webhook_deliveries')
      .where({ id })
      .update({ status: 'pending', next_attempt_at: db.fn.now() } as never)
      .returning('*');
    await deps.queues.webhooks.add('deliver', { deliveryId: id }, { ...webhookJobOptions(id, row!.attempts, 0), jobId: `${id}-redeliver-${Date.now()}` });
    res.status(202).json(deliveryJson(row!));
  });

  /** What a webhook may have missed: the merchant's events in sequence order. */
  router.get('/events', allow('merchant'), async (req, res) => {
    const q = parse(eventsQuery, req.query, 'query');
    const after = Math.max(q.after_sequence ?? 0, q.cursor ? Number(q.cursor) : 0);
    const query = dbRead('events').where('merchant_id', merchantOf(req)).whereNotNull('sequence').andWhere('sequence', '>', after).orderBy('sequence').limit(q.limit + 1);
    if (q.type) query.where('type', q.type);
    const rows: { id: string; type: string; sequence: number; created_at: Date; data: unknown }[] = await query;
    const more = rows.length > q.limit;
    const shown = more ? rows.slice(0, q.limit) : rows;
    res.json({
      data: shown.map((e) => ({ id: e.id, type: e.type, sequence: e.sequence, created_at: e.created_at.toISOString(), data: e.data })),
      next_cursor: more ? String(shown[shown.length - 1]!.sequence) : null,
    });
  });

  return router;
}
