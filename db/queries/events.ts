import { randomUUID } from 'node:crypto';
import type { Db } from '../knex.js';

export interface OutboxEvent {
  merchantId: string | null;
  /** One of EVENT_TYPES (operations/index.ts). */
  type: string;
  data: Record<string, unknown>;
}

/** The INSERT of an outbox event, to run alone or inside a larger statement. */
export function eventInsert(db: Db, event: OutboxEvent) {
  return db('events').insert({ id: `evt_${randomUUID().replaceAll('-', '')}`, merchant_id: event.merchantId, type: event.type, data: JSON.stringify(event.data) });
}

/** Writes an outbox event in the caller's transaction; the relay gives it its per-merchant sequence. */
export async function writeEvent(trx: Db, merchantId: string | null, type: string, data: Record<string, unknown>): Promise<void> {
  await eventInsert(trx, { merchantId, type, data });
}

/** An event as the feed shows it, once the relay has given it its sequence. */
export interface SequencedEvent {
  id: string;
  type: string;
  sequence: number;
  created_at: Date;
  data: unknown;
}

/** A merchant's sequenced events after `after`, in sequence order, optionally of one type; limit + 1 rows to know whether more exist. */
export async function listEventsAfter(db: Db, merchantId: string, f: { after: number; type?: string; limit: number }): Promise<SequencedEvent[]> {
  const query = db('events').where('merchant_id', merchantId).whereNotNull('sequence').andWhere('sequence', '>', f.after).orderBy('sequence').limit(f.limit + 1);
  if (f.type) query.where('type', f.type);
  return query;
}
