import { assertHeld, runScenario, sleep } from './helpers/scenario.js';
import { freezeInTransaction } from './helpers/sessions.js';

const LOCK_MS = 5000;
const STALLED_INTERVAL_MS = 2000;

describe('faults: SIGSTOP a worker past its job lock, then SIGCONT', () => {
  it('the stalled jobs go to the other worker while the first is still alive, and nothing is applied twice', async () => {
    let frozenInTransaction = 0;
    const report = await runScenario({
      title: '6. SIGSTOP one of two workers inside a transaction, past the job lock (5 s) for 9 s, then SIGCONT',
      workers: 2,
      env: { JOB_LOCK_MS: String(LOCK_MS), STALLED_INTERVAL_MS: String(STALLED_INTERVAL_MS) },
      async fault(ctx) {
        const frozen = ctx.engine.workers[0]!;
        frozenInTransaction = await freezeInTransaction(ctx.db, frozen);
        await ctx.harm(`SIGSTOP ${frozen.name} (pid ${frozen.pid}) inside ${frozenInTransaction} operation transaction(s), holding its job locks`);
        await sleep(LOCK_MS + 2 * STALLED_INTERVAL_MS);
        frozen.signal('SIGCONT');
        ctx.note(`SIGCONT ${frozen.name}: it wakes up holding jobs the other worker has taken over`);
      },
      async verify(ctx, problems) {
        const [frozen, other] = ctx.engine.workers;
        console.log(`     lock complaints in the logs (a job taken over while its first worker lived): ${frozen!.name} ${frozen!.lockErrors}, ${other!.name} ${other!.lockErrors}`);
        for (const line of frozen!.lockLines.slice(0, 2)) console.log(`       ${line}`);
        if (!frozenInTransaction) problems.push('never caught the worker inside a transaction');
      },
    });
    assertHeld(report);
  });
});
