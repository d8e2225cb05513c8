import { assertHeld, runScenario, sleep } from './helpers/scenario.js';

describe('faults: kill -9 a worker in the middle of jobs', () => {
  it('a new worker and the stalled-job check finish every accepted operation exactly once', async () => {
    const report = await runScenario({
      title: '1. kill -9 the worker process under load, start a new one',
      async fault(ctx) {
        const victim = ctx.engine.workers[0]!;
        await ctx.harm(`kill -9 ${victim.name} (pid ${victim.pid})`);
        await victim.kill9();
        await sleep(1000);
        const fresh = await ctx.engine.replaceWorker(victim);
        ctx.note(`${fresh.name} started (pid ${fresh.pid})`);
      },
    });
    assertHeld(report);
  });
});
