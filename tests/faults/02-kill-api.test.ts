import { assertHeld, runScenario, sleep, waitUntil } from './helpers/scenario.js';

describe('faults: kill -9 the api process with requests in flight', () => {
  it('clients retrying with the same Idempotency-Key get the one operation, and every accepted one finishes', async () => {
    const report = await runScenario({
      title: '2. kill -9 the api process with requests in flight, start a new one',
      async fault(ctx) {
        await waitUntil(() => ctx.load.pending >= 3, 3000);
        await ctx.harm(`kill -9 api (pid ${ctx.engine.api.pid}) with ${ctx.load.pending} requests in flight`);
        await ctx.engine.api.kill9();
        await sleep(500);
        await ctx.engine.restartApi();
        ctx.note(`api started again (pid ${ctx.engine.api.pid}) on the same port`);
        // Again, when the retries of the first kill are arriving.
        await sleep(2500);
        await ctx.harm(`kill -9 api again (pid ${ctx.engine.api.pid}) with ${ctx.load.pending} requests in flight`);
        await ctx.engine.api.kill9();
        await ctx.engine.restartApi();
        ctx.note(`api started again (pid ${ctx.engine.api.pid})`);
      },
      async verify(ctx, problems) {
        if (ctx.clients.stats.retried === 0) problems.push('no client had to retry: the kill hit no request in flight');
      },
    });
    assertHeld(report);
  });
});
