import { assertHeld, runScenario, sleep } from './helpers/scenario.js';
import { freezeInTransaction } from './helpers/sessions.js';

describe('faults: restart Postgres while workers are writing', () => {
  it('in-flight transactions roll back and are retried; nothing is applied twice or lost', async () => {
    let inTransaction = 0;
    const report = await runScenario({
      title: '5. Postgres immediate shutdown (crash-like, WAL replay) while a worker is mid-transaction, down 3 s',
      async fault(ctx) {
        const { pg } = ctx.servers;
        // The worker is held inside an operation transaction so the crash surely lands mid-write; it resumes onto a dead connection.
        const worker = ctx.engine.workers[0]!;
        inTransaction = await freezeInTransaction(ctx.db, worker);
        await ctx.harm(`postgres immediate shutdown with ${worker.name} inside ${inTransaction} operation transaction(s)`);
        await pg.stop('immediate');
        worker.signal('SIGCONT');
        await sleep(3000);
        await pg.start();
        ctx.note('postgres started again (crash recovery)');
      },
      async verify(_ctx, problems) {
        if (!inTransaction) problems.push('the worker was never caught inside a transaction');
      },
    });
    assertHeld(report);
  });
});
