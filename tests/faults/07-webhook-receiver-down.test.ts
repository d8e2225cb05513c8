import { Queue } from 'bullmq';
import { WEBHOOK_QUEUE } from '../../jobs/names.js';
import { adminClient } from '../helpers/redis-topologies.js';
import { WebhookReceiver } from './helpers/receiver.js';
import { assertHeld, runScenario, sleep, waitUntil, type ScenarioContext } from './helpers/scenario.js';


/** Waits (≤ 60 s after `since`… bounded by TERMINAL_BOUND_MS) until every payment.succeeded event reached the receiver; checks signatures, one event per payment, and gapless sequences. */
async function verifyDeliveries(ctx: ScenarioContext, receiver: WebhookReceiver, since: number, problems: string[], boundMs = 60_000): Promise<void> {
  const expected = async () => (await ctx.db.raw<{ rows: { id: string }[] }>(`SELECT e.id FROM events e WHERE e.merchant_id IS NOT NULL AND e.type = 'payment.succeeded'`)).rows.map((r) => r.id);
  let ids: string[] = [];
  const allIn = await waitUntil(async () => {
    ids = await expected();
    return ids.every((id) => receiver.accepted.has(id));
  }, boundMs);
  const doneS = (Date.now() - since) / 1000;
  const missing = ids.filter((id) => !receiver.accepted.has(id));
  const duplicates = [...receiver.accepted.values()].filter((n) => n > 1).length;
  const { rows: deliveries } = await ctx.db.raw<{ rows: { status: string; n: string; max_attempts: number }[] }>(
    `SELECT d.status, count(*) AS n, max(d.attempts) AS max_attempts FROM webhook_deliveries d GROUP BY 1`,
  );
  const { rows: perPayment } = await ctx.db.raw<{ rows: { bad: string }[] }>(
    `SELECT count(*) AS bad FROM operations o WHERE o.type = 'payment' AND o.status = 'succeeded'
       AND (SELECT count(*) FROM events e WHERE e.type = 'payment.succeeded' AND e.data->>'operation_id' = o.id) <> 1`,
  );
  // Per-merchant sequence numbers: every event numbered once, 1..n with no gap.
  const { rows: seq } = await ctx.db.raw<{ rows: { bad: string }[] }>(
    `SELECT count(*) AS bad FROM (SELECT merchant_id, count(*) AS n, count(sequence) AS numbered, max(sequence) AS top, count(DISTINCT sequence) AS distinct_n
       FROM events WHERE merchant_id IS NOT NULL GROUP BY 1) s WHERE numbered <> n OR top <> n OR distinct_n <> n`,
  );
  console.log(
    `     webhooks: ${ids.length} payment.succeeded events; receiver accepted ${receiver.accepted.size} distinct (${duplicates} more than once), ${receiver.badSignatures} bad signatures, ${receiver.refusedWhileFailing} answered 503; ${allIn ? `all delivered ${doneS.toFixed(1)} s after the fault` : `${missing.length} NOT delivered ${doneS.toFixed(1)} s after the fault`}; deliveries: ${deliveries.map((d) => `${d.status} ${d.n} (max attempts ${d.max_attempts})`).join(', ')}`,
  );
  if (!allIn) {
    const { rows: stuck } = await ctx.db.raw<{ rows: { id: string; attempts: number; next_attempt_at: Date; age_s: number }[] }>(
      `SELECT d.id, d.attempts, d.next_attempt_at, extract(epoch FROM now() - d.next_attempt_at)::int AS age_s FROM webhook_deliveries d WHERE d.status = 'pending' ORDER BY d.next_attempt_at LIMIT 3`,
    );
    // What BullMQ holds under the id the relay re-enqueues an overdue delivery with (`<delivery>-<attempts>`).
    const connection = adminClient(ctx.servers.redis.port);
    const queue = new Queue(WEBHOOK_QUEUE, { connection, prefix: ctx.queuePrefix });
    queue.on('error', () => undefined);
    const failed = await queue.getJobs(['failed'], 0, 5000).catch(() => []);
    const states = await Promise.all(
      stuck.map(async (d) => {
        const state = await queue.getJobState(`${d.id}-${d.attempts}`).catch((e: Error) => e.message);
        const others = failed.filter((j) => j.id?.startsWith(d.id)).map((j) => `${j.id} failed after ${j.attemptsMade} attempts (${j.failedReason})`);
        return `${d.id}-${d.attempts} is ${state}${others.length ? `, and ${others.join(', ')}` : ''}`;
      }),
    );
    await queue.close();
    connection.disconnect();
    problems.push(
      `${missing.length} payment.succeeded events never reached the receiver within ${boundMs / 1000} s (e.g. ${missing.slice(0, 3).join(', ')}); ` +
        `their deliveries stay pending, overdue by ${stuck[0]?.age_s} s (the relay re-enqueues after 60 s), and the BullMQ job under the id the relay re-adds is: ${states.join('; ')}`,
    );
  }
  if (receiver.badSignatures) problems.push(`${receiver.badSignatures} deliveries failed signature verification`);
  if (Number(perPayment[0]!.bad)) problems.push(`${perPayment[0]!.bad} succeeded payments without exactly one payment.succeeded event`);
  if (Number(seq[0]!.bad)) problems.push(`${seq[0]!.bad} merchants whose event sequence is not 1..n without gaps`);
  if (!ids.length) problems.push('no payment.succeeded event at all');
}

async function registerEndpoints(ctx: ScenarioContext, receiver: WebhookReceiver): Promise<void> {
  for (const [i, key] of ctx.data.merchantKeys.entries()) {
    const res = await ctx.clients.send('POST', '/v1/merchant/webhook-endpoints', key, { url: receiver.url(`/hook/${i}`), events: ['payment.succeeded'] });
    if (res?.status !== 201) throw new Error(`endpoint registration answered ${res?.status}: ${JSON.stringify(res?.json)}`);
    receiver.secrets.set(`/hook/${i}`, res.json.secret);
  }
  ctx.note(`${ctx.data.merchantKeys.length} endpoints registered (payment.succeeded), receiver on :${receiver.port}`);
}

describe('faults: a webhook receiver that is down for a while, then back', () => {
  it('every payment.succeeded event is delivered at least once, signed, and recorded once', async () => {
    const receiver = await WebhookReceiver.start();
    let backAt = 0;
    try {
      const report = await runScenario({
        title: '7. webhook receiver down (connection refused) 8 s, then 503 for 3 s, then back',
        setup: (ctx) => registerEndpoints(ctx, receiver),
        async fault(ctx) {
          await ctx.harm('webhook receiver down (port closed)');
          await receiver.set('down');
          await sleep(8000);
          await receiver.set('error');
          ctx.note('receiver listening again but answering 503');
          await sleep(3000);
          await receiver.set('up');
          backAt = Date.now();
          ctx.note('receiver up, verifying signatures');
        },
        verify: (ctx, problems) => verifyDeliveries(ctx, receiver, backAt, problems),
      });
      assertHeld(report);
    } finally {
      await receiver.close();
    }
  });

  it('deliveries caught by a Postgres outage (webhook jobs failing their attempts) are still delivered', async () => {
    const receiver = await WebhookReceiver.start();
    let backAt = 0;
    try {
      const report = await runScenario({
        title: '7b. Postgres down 6 s while webhook deliveries are queued (their jobs fail every attempt), receiver up',
        warmupMs: 5000,
        afterMs: 4000,
        setup: (ctx) => registerEndpoints(ctx, receiver),
        async fault(ctx) {
          await ctx.harm('postgres immediate shutdown with webhook deliveries queued');
          await ctx.servers.pg.stop('immediate');
          await sleep(6000);
          await ctx.servers.pg.start();
          backAt = Date.now();
          ctx.note('postgres back');
        },
        verify: (ctx, problems) => verifyDeliveries(ctx, receiver, backAt, problems, 75_000),
      });
      assertHeld(report);
    } finally {
      await receiver.close();
    }
  });
});
