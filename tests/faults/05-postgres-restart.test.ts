import { assertHeld, runScenario, sleep } from './helpers/scenario.js';
import { waitForOperationTransaction } from './helpers/sessions.js';

describe('faults: restart Postgres while workers are writing', () => {
  it('in-flight transactions roll back and are retried; nothing is applied twice or lost', async () => {
    const report = await runScenario({
      title: '5. Postgres immediate shutdown (crash-like, WAL replay) while workers are writing, down 3 s',
      async fault(ctx) {
        const { pg } = ctx.servers;
        const writing = await waitForOperationTransaction(ctx.db);
        await ctx.harm(`postgres immediate shutdown (${writing} operation transaction(s) open a moment before)`);
        await pg.stop('immediate');
        await sleep(3000);
        await pg.start();
        ctx.note('postgres started again (crash recovery)');
      },
    });
    assertHeld(report);
  });
});
