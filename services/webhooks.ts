import type { Deps } from '../app/deps.js';
import type { Config } from '../config/env.js';
import type { Db } from '../db/knex.js';
import { lockMerchant } from '../db/queries/merchants.js';
import {
  countEndpoints,
  deleteEndpoint,
  findDelivery,
  findEndpoint,
  insertEndpoint,
  requeueDelivery,
  rotateEndpointSecret,
  type WebhookDeliveryRow,
  type WebhookEndpointRow,
} from '../db/queries/webhooks.js';
import { AppError, conflict, notFound } from '../domain/errors.js';
import type { Caller } from '../domain/principal.js';
import { seal } from '../domain/secret-box.js';
import { randomSecret } from '../domain/tokens.js';
import { webhookJobOptions } from '../jobs/queues.js';
import { resolveWebhookTarget } from '../jobs/webhook-target.js';
import { auditBy } from './audit.js';
import { isUuid } from './card-access.js';

/** How long a rotated-out secret still signs (a second v1). */
const SECRET_GRACE_HOURS = 24;

/** An endpoint with its signing secret in clear: returned once, at creation and at each rotation. */
export interface EndpointWithSecret {
  endpoint: WebhookEndpointRow;
  secret: string;
}

const merchantOf = (caller: Caller) => caller.principal.merchantId!;
const newSecret = () => `whsec_${randomSecret(32)}`;

function encryptionKey(config: Config): string {
  if (!config.ENCRYPTION_KEY) throw new AppError('UNAVAILABLE', 'Webhooks need ENCRYPTION_KEY to be configured');
  return config.ENCRYPTION_KEY;
}

const auditEndpoint = (trx: Db, caller: Caller, action: string, id: string, context?: Record<string, unknown>) =>
  auditBy(trx, caller, { action: `webhook_endpoint.${action}`, objectType: 'webhook_endpoint', objectId: id, context });

/**
 * Registers an endpoint of the caller's merchant, at most WEBHOOK_MAX_ENDPOINTS each, for a URL
 * delivery would accept (resolveWebhookTarget). The secret is kept encrypted because MPS needs it
 * in clear to sign.
 */
export async function createEndpoint({ db, config }: Deps, caller: Caller, input: { url: string; events: string[] }): Promise<EndpointWithSecret> {
  const key = encryptionKey(config);
  await resolveWebhookTarget(input.url, config.WEBHOOK_ALLOW_INSECURE);
  const secret = newSecret();
  const merchantId = merchantOf(caller);
  const endpoint = await db.transaction(async (trx) => {
    // The merchant row lock serializes registrations, so two at once cannot both pass the cap.
    await lockMerchant(trx, merchantId);
    if ((await countEndpoints(trx, merchantId)) >= config.WEBHOOK_MAX_ENDPOINTS) {
      throw conflict(`A merchant may have at most ${config.WEBHOOK_MAX_ENDPOINTS} webhook endpoints; delete one first`, { limit: config.WEBHOOK_MAX_ENDPOINTS });
    }
    const row = await insertEndpoint(trx, { merchant_id: merchantId, url: input.url, events: [...new Set(input.events)], secret_enc: seal(secret, key) });
    await auditEndpoint(trx, caller, 'create', row.id, { url: row.url, events: row.events });
    return row;
  });
  return { endpoint, secret };
}

/** An endpoint of the caller's merchant; any other (or a malformed id) is 404. */
export async function ownEndpoint(db: Db, caller: Caller, id: string): Promise<WebhookEndpointRow> {
  const endpoint = isUuid(id) ? await findEndpoint(db, id, merchantOf(caller)) : undefined;
  if (!endpoint) throw notFound('webhook endpoint');
  return endpoint;
}

export async function removeEndpoint(db: Db, caller: Caller, id: string): Promise<void> {
  const endpoint = await ownEndpoint(db, caller, id);
  await db.transaction(async (trx) => {
    await deleteEndpoint(trx, endpoint.id);
    await auditEndpoint(trx, caller, 'delete', endpoint.id);
  });
}

/** A new secret signs from now on; the old one still signs (a second v1) for 24 h. */
export async function rotateSecret({ db, config }: Deps, caller: Caller, id: string): Promise<EndpointWithSecret> {
  const endpoint = await ownEndpoint(db, caller, id);
  const secret = newSecret();
  const sealed = seal(secret, encryptionKey(config));
  const rotated = await db.transaction(async (trx) => {
    const row = await rotateEndpointSecret(trx, endpoint.id, sealed, SECRET_GRACE_HOURS);
    await auditEndpoint(trx, caller, 'rotate_secret', endpoint.id);
    return row!;
  });
  return { endpoint: rotated, secret };
}

/** Sends the event again now, whatever the delivery's state; the attempt joins its log. Only to an active endpoint delivery would still accept. */
export async function redeliver({ db, config, queues }: Deps, caller: Caller, id: string): Promise<WebhookDeliveryRow> {
  const delivery = isUuid(id) ? await findDelivery(db, id) : undefined;
  const endpoint = delivery ? await findEndpoint(db, delivery.endpoint_id, merchantOf(caller)) : undefined;
  if (!delivery || !endpoint) throw notFound('webhook delivery');
  if (endpoint.status !== 'active') throw conflict('The endpoint is disabled');
  // Redelivery must not become a way to send requests at will to a target delivery refuses.
  await resolveWebhookTarget(endpoint.url, config.WEBHOOK_ALLOW_INSECURE);
  const row = await requeueDelivery(db, id);
  await queues.webhooks.add('deliver', { deliveryId: id }, { ...webhookJobOptions(id, row.attempts, 0), jobId: `${id}-redeliver-${Date.now()}` });
  return row;
}
