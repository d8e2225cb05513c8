import type { Deps } from '../app/deps.js';
import { createDeliveries, listOverdueDeliveries } from '../db/queries/webhooks.js';
import { webhookJobOptions } from './queues.js';

const BATCH = 1000;
const RELAY_LOCK = 7_246_002;
const OVERDUE_GRACE_S = 60;

/**
 * Moves outbox events to webhook deliveries: gives each merchant's new events the next numbers of
 * its sequence (one relay at a time, under an advisory lock), creates a delivery per subscribed
 * endpoint, and enqueues them. Events are relayed at least once: a delivery whose job was lost
 * (Redis trouble) is enqueued again once overdue.
 */
export async function runRelayOutbox(deps: Deps): Promise<{ relayed: number; enqueued: number }> {
  const { db } = deps;
  let relayed = 0;
  let enqueued = 0;
  for (;;) {
    const batch = await db.transaction(async (trx) => {
      await trx.raw('SELECT pg_advisory_xact_lock(?)', [RELAY_LOCK]);
      const { rows } = await trx.raw<{ rows: { id: string }[] }>(
        `WITH batch AS (
           SELECT id, merchant_id, created_at FROM events WHERE relayed_at IS NULL ORDER BY created_at, id LIMIT ?
         ), numbered AS (
           SELECT b.id,
                  CASE WHEN b.merchant_id IS NULL THEN NULL ELSE
                    coalesce((SELECT max(e.sequence) FROM events e WHERE e.merchant_id = b.merchant_id), 0)
                    + row_number() OVER (PARTITION BY b.merchant_id ORDER BY b.created_at, b.id) END AS seq
             FROM batch b
         )
         UPDATE events e SET sequence = n.seq, relayed_at = now() FROM numbered n WHERE e.id = n.id RETURNING e.id`,
        [BATCH],
      );
      const deliveries = await createDeliveries(trx, rows.map((r) => r.id));
      return { events: rows.length, deliveries: deliveries.map((d) => d.id) };
    });
    relayed += batch.events;
    enqueued += await enqueueDeliveries(deps, batch.deliveries.map((id) => ({ id, attempts: 0 })));
    if (batch.events < BATCH) break;
  }
  enqueued += await enqueueDeliveries(deps, await listOverdueDeliveries(db, OVERDUE_GRACE_S, BATCH), true);
  return { relayed, enqueued };
}

/**
 * New deliveries get the job id of their first attempt. Overdue ones (`again`) get a fresh id: the
 * id of their due attempt may still be held by a job BullMQ keeps (completed after deferring, or
 * failed through an outage), which would make the add a silent no-op.
 */
async function enqueueDeliveries(deps: Deps, deliveries: { id: string; attempts: number }[], again = false): Promise<number> {
  if (!deliveries.length) return 0;
  await deps.queues.webhooks.addBulk(
    deliveries.map((d) => {
      const opts = webhookJobOptions(d.id, d.attempts, 0);
      return { name: 'deliver', data: { deliveryId: d.id }, opts: again ? { ...opts, jobId: `${opts.jobId}-o${Date.now()}` } : opts };
    }),
  );
  return deliveries.length;
}
