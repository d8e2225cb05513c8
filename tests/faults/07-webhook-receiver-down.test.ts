import { WebhookReceiver } from './helpers/receiver.js';
import { assertHeld, runScenario, sleep, waitUntil } from './helpers/scenario.js';

describe('faults: a webhook receiver that is down for a while, then back', () => {
  it('every payment.succeeded event is delivered at least once, signed, and recorded once', async () => {
    const receiver = await WebhookReceiver.start();
    let backAt = 0;
    try {
      const report = await runScenario({
        title: '7. webhook receiver down (connection refused) 8 s, then 503 for 3 s, then back',
        async setup(ctx) {
          for (const [i, key] of ctx.data.merchantKeys.entries()) {
            const res = await ctx.clients.send('POST', '/v1/merchant/webhook-endpoints', key, { url: receiver.url(`/hook/${i}`), events: ['payment.succeeded'] });
            if (res?.status !== 201) throw new Error(`endpoint registration answered ${res?.status}: ${JSON.stringify(res?.json)}`);
            receiver.secrets.set(`/hook/${i}`, res.json.secret);
          }
          ctx.note(`${ctx.data.merchantKeys.length} endpoints registered (payment.succeeded), receiver on :${receiver.port}`);
        },
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
        async verify(ctx, problems) {
          const expected = async () =>
            (await ctx.db.raw<{ rows: { id: string }[] }>(`SELECT e.id FROM events e JOIN merchants m ON m.id = e.merchant_id WHERE e.type = 'payment.succeeded'`)).rows.map((r) => r.id);
          let ids: string[] = [];
          const allIn = await waitUntil(async () => {
            ids = await expected();
            return ids.every((id) => receiver.accepted.has(id));
          }, 60_000);
          const doneS = (Date.now() - backAt) / 1000;
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
            `     webhooks: ${ids.length} payment.succeeded events; receiver accepted ${receiver.accepted.size} distinct (${duplicates} more than once), ${receiver.badSignatures} bad signatures, ${receiver.refusedWhileFailing} answered 503; all delivered ${doneS.toFixed(1)} s after the receiver was back; deliveries: ${deliveries.map((d) => `${d.status} ${d.n} (max attempts ${d.max_attempts})`).join(', ')}`,
          );
          if (!allIn) problems.push(`${missing.length} payment.succeeded events never reached the receiver (e.g. ${missing.slice(0, 3).join(', ')})`);
          if (receiver.badSignatures) problems.push(`${receiver.badSignatures} deliveries failed signature verification`);
          if (Number(perPayment[0]!.bad)) problems.push(`${perPayment[0]!.bad} succeeded payments without exactly one payment.succeeded event`);
          if (Number(seq[0]!.bad)) problems.push(`${seq[0]!.bad} merchants whose event sequence is not 1..n without gaps`);
          if (!ids.length) problems.push('no payment.succeeded event at all');
        },
      });
      assertHeld(report);
    } finally {
      await receiver.close();
    }
  });
});
