import { assertHeld, runScenario, sleep } from './helpers/scenario.js';

describe('faults: restart Postgres while workers are writing', () => {
  it('in-flight transactions roll back and are retried; nothing is applied twice or lost', async () => {
    const report = await runScenario({
      title: '5. Postgres immediate shutdown (crash-like, WAL replay) under load, down 3 s',
      async fault(ctx) {
        const { pg } = ctx.servers;
        await ctx.harm('postgres immediate shutdown');
        await pg.stop('immediate');
        await sleep(3000);
        await pg.start();
        ctx.note('postgres started again (crash recovery)');
      },
    });
    assertHeld(report);
  });
});
