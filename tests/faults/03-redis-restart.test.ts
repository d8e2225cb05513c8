import { assertHeld, runScenario, sleep } from './helpers/scenario.js';

describe('faults: restart Redis (AOF on) with operations queued and running', () => {
  it('the API keeps accepting (202, durable in Postgres) and every operation finishes once Redis is back', async () => {
    const report = await runScenario({
      title: '3. kill -9 Redis (appendonly everysec) with jobs queued and running, down 3 s, restart on its AOF',
      async fault(ctx) {
        const { redis } = ctx.servers;
        // A backlog to lose: the worker pauses (well inside its lock time) while jobs pile up, and resumes as Redis dies.
        const worker = ctx.engine.workers[0]!;
        worker.signal('SIGSTOP');
        await sleep(1500);
        await ctx.harm('redis SIGKILL');
        await redis.stop('SIGKILL');
        worker.signal('SIGCONT');
        await sleep(3000);
        await redis.start();
        ctx.note('redis started again on the same port and AOF');
      },
    });
    assertHeld(report);
  });
});
