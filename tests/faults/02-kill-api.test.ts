import { assertHeld, runScenario, sleep, waitUntil } from './helpers/scenario.js';

describe('faults: kill -9 the api process with requests in flight', () => {
  it('clients retrying with the same Idempotency-Key get the one operation, and every accepted one finishes', async () => {
    let inFlight = 0;
    const report = await runScenario({
      title: '2. kill -9 the api process with requests in flight (twice), start a new one each time',
      async fault(ctx) {
        // The worker pauses for a moment so that POSTs pile up inside the api, accepted and waiting (Prefer: wait) for their result.
        const worker = ctx.engine.workers[0]!;
        worker.signal('SIGSTOP');
        await waitUntil(() => ctx.load.pending >= 30, 3000);
        inFlight = ctx.load.pending;
        await ctx.harm(`kill -9 api (pid ${ctx.engine.api.pid}) with ${inFlight} requests in flight (worker paused to hold them there)`);
        await ctx.engine.api.kill9();
        worker.signal('SIGCONT');
        await sleep(500);
        await ctx.engine.restartApi();
        ctx.note(`api started again (pid ${ctx.engine.api.pid}) on the same port`);
        // Again at an arbitrary moment, while the retries of the first kill arrive.
        await sleep(2000);
        await ctx.harm(`kill -9 api again (pid ${ctx.engine.api.pid}) with ${ctx.load.pending} requests in flight`);
        await ctx.engine.api.kill9();
        await ctx.engine.restartApi();
        ctx.note(`api started again (pid ${ctx.engine.api.pid})`);
      },
      async verify(ctx, problems) {
        const replays = [...ctx.clients.accepted.values()].length;
        if (ctx.clients.stats.retried === 0) problems.push('no client had to retry: the kill hit no request in flight');
        if (inFlight < 5) problems.push(`only ${inFlight} requests were in flight at the kill`);
        console.log(`     ${replays} operations accepted; every retried request was answered with the operation of its first attempt (checked per key)`);
      },
    });
    assertHeld(report);
  });
});
