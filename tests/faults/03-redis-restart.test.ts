import { assertHeld, runScenario, sleep } from './helpers/scenario.js';

describe('faults: restart Redis (AOF on) with operations queued and running', () => {
  it('the API keeps accepting (202, durable in Postgres) and every operation finishes once Redis is back', async () => {
    const report = await runScenario({
      title: '3. kill -9 Redis (appendonly everysec) under load, down 3 s, restart on its AOF',
      async fault(ctx) {
        const { redis } = ctx.servers;
        ctx.note(`redis SIGKILL with ${await ctx.openOperations()} operations open`);
        await redis.stop('SIGKILL');
        await sleep(3000);
        await redis.start();
        ctx.note('redis started again on the same port and AOF');
      },
    });
    assertHeld(report);
  });
});
