import { randomUUID } from 'node:crypto';
import type { Db } from '../knex.js';

export type EventType = 'payment.succeeded' | 'payment.failed' | 'refund.succeeded' | 'recharge.succeeded' | 'settlement.generated' | 'risk.alert';

/** Writes an outbox event in the caller's transaction; the relay gives it its per-merchant sequence. */
export async function writeEvent(trx: Db, merchantId: string | null, type: EventType, data: Record<string, unknown>): Promise<string> {
  const id = `evt_${randomUUID().replaceAll('-', '')}`;
  await trx('events').insert({ id, merchant_id: merchantId, type, data: JSON.stringify(data) });
  return id;
}
