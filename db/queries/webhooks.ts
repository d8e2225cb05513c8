import { newestFirst, type Db, type PageRequest } from '../knex.js';

export interface WebhookEndpointRow {
  id: string;
  merchant_id: string;
  url: string;
  events: string[];
  secret_enc: string;
  previous_secret_enc: string | null;
  previous_secret_expires_at: Date | null;
  status: 'active' | 'disabled';
  created_at: Date;
  disabled_at: Date | null;
}

export interface AttemptLog {
  at: string;
  status: number | null;
  duration_ms: number;
  error?: string;
  excerpt?: string;
  /** When the attempt is to be retried: the backoff drawn for it (jitter included). */
  retry_in_ms?: number;
}

export interface WebhookDeliveryRow {
  id: string;
  endpoint_id: string;
  event_id: string;
  status: 'pending' | 'delivered' | 'failed';
  attempts: number;
  attempt_log: AttemptLog[];
  next_attempt_at: Date | null;
  delivered_at: Date | null;
  created_at: Date;
}

export async function insertEndpoint(db: Db, e: Pick<WebhookEndpointRow, 'merchant_id' | 'url' | 'events' | 'secret_enc'>): Promise<WebhookEndpointRow> {
  const [row] = await db<WebhookEndpointRow>('webhook_endpoints').insert(e as never).returning('*');
  return row!;
}

export async function listEndpoints(db: Db, merchantId: string): Promise<WebhookEndpointRow[]> {
  return db<WebhookEndpointRow>('webhook_endpoints').where({ merchant_id: merchantId }).orderBy('created_at');
}

export async function countEndpoints(db: Db, merchantId: string): Promise<number> {
  const [counted] = await db('webhook_endpoints').where({ merchant_id: merchantId }).count<{ n: string }[]>({ n: '*' });
  return Number(counted?.n);
}

export async function deleteEndpoint(db: Db, id: string): Promise<void> {
  await db('webhook_endpoints').where({ id }).del();
}

export async function findEndpoint(db: Db, id: string, merchantId?: string): Promise<WebhookEndpointRow | undefined> {
  const q = db<WebhookEndpointRow>('webhook_endpoints').where({ id });
  if (merchantId) q.andWhere({ merchant_id: merchantId });
  return q.first();
}

/** The new secret signs from now on; the old one keeps signing (second v1) for `graceHours`. */
export async function rotateEndpointSecret(db: Db, id: string, newSecretEnc: string, graceHours: number): Promise<WebhookEndpointRow | undefined> {
  const [row] = await db<WebhookEndpointRow>('webhook_endpoints')
    .where({ id })
    .update({
      previous_secret_enc: db.ref('secret_enc'),
      previous_secret_expires_at: db.raw('now() + make_interval(hours => ?)', [graceHours]),
      secret_enc: newSecretEnc,
    } as never)
    .returning('*');
  return row;
}

export async function disableEndpoint(db: Db, id: string): Promise<void> {
  await db('webhook_endpoints').where({ id }).update({ status: 'disabled', disabled_at: db.fn.now() });
}

/** Deliveries for the endpoints of `merchantId` subscribed to each event; returns the new ones. */
export async function createDeliveries(db: Db, eventIds: string[]): Promise<Pick<WebhookDeliveryRow, 'id'>[]> {
  if (!eventIds.length) return [];
  const { rows } = await db.raw<{ rows: { id: string }[] }>(
    `INSERT INTO webhook_deliveries (endpoint_id, event_id, next_attempt_at)
     SELECT w.id, e.id, now() FROM events e
       JOIN webhook_endpoints w ON w.merchant_id = e.merchant_id AND w.status = 'active' AND e.type = ANY (w.events)
      WHERE e.id = ANY (?)
     ON CONFLICT (endpoint_id, event_id) DO NOTHING
     RETURNING id`,
    [eventIds],
  );
  return rows;
}

export async function findDelivery(db: Db, id: string): Promise<WebhookDeliveryRow | undefined> {
  return db<WebhookDeliveryRow>('webhook_deliveries').where({ id }).first();
}

/** A merchant's deliveries, newest first, optionally of one endpoint, status or event. */
export async function listDeliveries(db: Db, merchantId: string, f: PageRequest & { endpointId?: string; status?: string; eventId?: string }): Promise<WebhookDeliveryRow[]> {
  const query = newestFirst(db, db<WebhookDeliveryRow>('webhook_deliveries as d').join('webhook_endpoints as w', 'w.id', 'd.endpoint_id').where('w.merchant_id', merchantId).select('d.*'), 'd', f);
  if (f.endpointId) query.where('d.endpoint_id', f.endpointId);
  if (f.status) query.where('d.status', f.status);
  if (f.eventId) query.where('d.event_id', f.eventId);
  return query;
}

/** Makes a delivery due now (a redelivery), whatever its state; its attempts and log stay. */
export async function requeueDelivery(db: Db, id: string): Promise<WebhookDeliveryRow> {
  const [row] = await db<WebhookDeliveryRow>('webhook_deliveries')
    .where({ id })
    .update({ status: 'pending', next_attempt_at: db.fn.now() } as never)
    .returning('*');
  return row!;
}

export async function recordAttempt(
  db: Db,
  id: string,
  attempt: AttemptLog,
  next: { status: 'pending'; delayMs: number } | { status: 'delivered' | 'failed' },
): Promise<void> {
  await db('webhook_deliveries')
    .where({ id })
    .update({
      attempts: db.raw('attempts + 1'),
      attempt_log: db.raw(`attempt_log || ?::jsonb`, [JSON.stringify([next.status === 'pending' ? { ...attempt, retry_in_ms: next.delayMs } : attempt])]),
      status: next.status,
      next_attempt_at: next.status === 'pending' ? db.raw('now() + make_interval(secs => ?)', [next.delayMs / 1000]) : null,
      delivered_at: next.status === 'delivered' ? db.fn.now() : null,
    });
}

/** Pending deliveries whose next attempt is overdue by `graceS`: their job was lost and must be enqueued again. */
export async function listOverdueDeliveries(db: Db, graceS: number, limit: number): Promise<Pick<WebhookDeliveryRow, 'id' | 'attempts'>[]> {
  return db('webhook_deliveries')
    .select('id', 'attempts')
    .where('status', 'pending')
    .andWhere('next_attempt_at', '<', db.raw('now() - make_interval(secs => ?)', [graceS]))
    .orderBy('next_attempt_at')
    .limit(limit);
}
