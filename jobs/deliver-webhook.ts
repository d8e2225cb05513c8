import type { Deps } from '../app/deps.js';
import { open } from '../domain/secret-box.js';
import { retryDelayMs, signatureHeader } from '../domain/webhook-signature.js';
import { disableEndpoint, findDelivery, findEndpoint, recordAttempt, type AttemptLog } from '../db/queries/webhooks.js';
import type { WebhookPayload } from './names.js';
import { webhookJobOptions } from './queues.js';
import { postToTarget, resolveWebhookTarget, type WebhookTarget } from './webhook-target.js';

const EXCERPT_BYTES = 512;
const RESPONSE_CAP_BYTES = 64 * 1024;

/**
 * One delivery attempt: POST the signed event with a 10 s timeout. 2xx delivers; 410 Gone disables
 * the endpoint; anything else retries with exponential backoff and jitter until WEBHOOK_MAX_AGE_S
 * after the delivery was created, then fails. Every attempt is logged on the delivery.
 */
export async function runDeliverWebhook(deps: Deps, payload: WebhookPayload): Promise<{ status: string }> {
  const { db, config, metrics } = deps;
  const delivery = await findDelivery(db, payload.deliveryId);
  if (!delivery || delivery.status !== 'pending') return { status: delivery?.status ?? 'missing' };
  const endpoint = await findEndpoint(db, delivery.endpoint_id);
  const event = await db('events').where({ id: delivery.event_id }).first();
  if (!endpoint || endpoint.status !== 'active' || !event || !config.ENCRYPTION_KEY) {
    await recordAttempt(db, delivery.id, { at: new Date().toISOString(), status: null, duration_ms: 0, error: 'endpoint disabled or not deliverable' }, { status: 'failed' });
    metrics.webhookDeliveries.inc({ outcome: 'failed' });
    return { status: 'failed' };
  }

  const body = JSON.stringify({ id: event.id, type: event.type, sequence: event.sequence, created_at: new Date(event.created_at).toISOString(), data: event.data });
  const { rows } = await db.raw<{ rows: { now_s: number; previous_valid: boolean; age_s: number }[] }>(
    `SELECT extract(epoch FROM now())::bigint AS now_s, coalesce(? > now(), false) AS previous_valid,
            extract(epoch FROM now() - ?::timestamptz)::bigint AS age_s`,
    [endpoint.previous_secret_expires_at, delivery.created_at],
  );
  const clock = rows[0]!;
  const secrets = [open(endpoint.secret_enc, config.ENCRYPTION_KEY)];
  if (endpoint.previous_secret_enc && clock.previous_valid) secrets.push(open(endpoint.previous_secret_enc, config.ENCRYPTION_KEY));

  if (!(await takeEndpointSlot(deps, endpoint.id))) {
    // The endpoint already has its share of attempts in flight (it may be hanging): try again shortly,
    // uncounted, and move the due time so the relay does not take the delivery for lost.
    const wait = 1000 + Math.floor(Math.random() * 1000);
    await db('webhook_deliveries').where({ id: delivery.id }).update({ next_attempt_at: db.raw('now() + make_interval(secs => ?)', [wait / 1000]) });
    await deps.queues.webhooks.add('deliver', { deliveryId: delivery.id }, { ...webhookJobOptions(delivery.id, delivery.attempts, wait), jobId: `${delivery.id}-${delivery.attempts}-w${Date.now()}` });
    return { status: 'deferred' };
  }
  const attempt = await post(endpoint.url, body, {
    'content-type': 'application/json',
    'user-agent': 'MPS-Webhooks/1',
    'mps-signature': signatureHeader(secrets, clock.now_s, body),
    'mps-event-id': event.id,
    'mps-event-type': event.type,
  }, config.WEBHOOK_ALLOW_INSECURE, config.WEBHOOK_TIMEOUT_MS).finally(() => releaseEndpointSlot(deps, endpoint.id));

  if (attempt.status !== null && attempt.status >= 200 && attempt.status < 300) {
    await recordAttempt(db, delivery.id, attempt, { status: 'delivered' });
    metrics.webhookDeliveries.inc({ outcome: 'delivered' });
    return { status: 'delivered' };
  }
  if (attempt.status === 410) {
    await recordAttempt(db, delivery.id, attempt, { status: 'failed' });
    await disableEndpoint(db, endpoint.id);
    metrics.webhookDeliveries.inc({ outcome: 'gone' });
    return { status: 'failed' };
  }
  const delay = retryDelayMs(delivery.attempts, config.WEBHOOK_BACKOFF_BASE_MS, config.WEBHOOK_BACKOFF_CAP_MS);
  if (clock.age_s * 1000 + delay > config.WEBHOOK_MAX_AGE_S * 1000) {
    await recordAttempt(db, delivery.id, attempt, { status: 'failed' });
    metrics.webhookDeliveries.inc({ outcome: 'failed' });
    return { status: 'failed' };
  }
  await recordAttempt(db, delivery.id, attempt, { status: 'pending', delayMs: delay });
  await deps.queues.webhooks.add('deliver', { deliveryId: delivery.id }, webhookJobOptions(delivery.id, delivery.attempts + 1, delay));
  metrics.webhookDeliveries.inc({ outcome: 'retry' });
  return { status: 'retry' };
}

const slotKey = (deps: Deps, endpointId: string) => `${deps.config.QUEUE_PREFIX}:wh-inflight:${endpointId}`;

/**
 * At most WEBHOOK_PER_ENDPOINT_CONCURRENCY attempts in flight per endpoint across all workers, so
 * one hanging endpoint holds a few delivery slots, never all of them. The count expires on its own
 * if a worker dies holding a slot. Without Redis the attempt goes ahead.
 */
async function takeEndpointSlot(deps: Deps, endpointId: string): Promise<boolean> {
  const key = slotKey(deps, endpointId);
  try {
    const [[, n]] = (await deps.redis.multi().incr(key).pexpire(key, deps.config.WEBHOOK_TIMEOUT_MS * 3).exec()) as [[unknown, number]];
    if (n <= deps.config.WEBHOOK_PER_ENDPOINT_CONCURRENCY) return true;
    await deps.redis.decr(key);
    return false;
  } catch {
    return true;
  }
}

async function releaseEndpointSlot(deps: Deps, endpointId: string): Promise<void> {
  await deps.redis.decr(slotKey(deps, endpointId)).catch(() => undefined);
}

/**
 * POSTs with a timeout to the address the URL is judged by at this attempt, and reads at most
 * RESPONSE_CAP_BYTES of the answer. A refused target gets no request, so nothing of a private
 * service's answer is ever stored; network errors are an attempt too.
 */
async function post(url: string, body: string, headers: Record<string, string>, allowInsecure: boolean, timeoutMs: number): Promise<AttemptLog> {
  const started = Date.now();
  const at = new Date(started).toISOString();
  let target: WebhookTarget;
  try {
    target = await resolveWebhookTarget(url, allowInsecure);
  } catch (err) {
    return { at, status: null, duration_ms: Date.now() - started, error: `refused: ${(err as Error).message}` };
  }
  try {
    const res = await postToTarget(target, body, headers, timeoutMs, RESPONSE_CAP_BYTES);
    return { at, status: res.status, duration_ms: Date.now() - started, excerpt: res.body.slice(0, EXCERPT_BYTES) };
  } catch (err) {
    return { at, status: null, duration_ms: Date.now() - started, error: (err as Error).message.slice(0, 200) };
  }
}
