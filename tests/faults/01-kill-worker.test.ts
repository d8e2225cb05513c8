import { assertHeld, runScenario, sleep } from './helpers/scenario.js';
import { freezeInTransaction } from './helpers/sessions.js';

describe('faults: kill -9 a worker in the middle of jobs', () => {
  it('a new worker and the stalled-job check finish every accepted operation exactly once', async () => {
    let inTransaction = 0;
    const report = await runScenario({
      title: '1. kill -9 the worker process in the middle of a job under load, start a new one',
      async fault(ctx) {
        const victim = ctx.engine.workers[0]!;
        // Caught inside an operation's transaction (stopped, so it stays there), then killed: the transaction dies with it.
        inTransaction = await freezeInTransaction(ctx.db, victim);
        await ctx.harm(`kill -9 ${victim.name} (pid ${victim.pid}) inside ${inTransaction} operation transaction(s)`);
        await victim.kill9();
        await sleep(1000);
        const fresh = await ctx.engine.replaceWorker(victim);
        ctx.note(`${fresh.name} started (pid ${fresh.pid})`);
      },
      async verify(_ctx, problems) {
        if (!inTransaction) problems.push('the worker was never caught inside a transaction');
      },
    });
    assertHeld(report);
  });
});
