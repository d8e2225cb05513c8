import type { Knex } from 'knex';
import { localPortsOf, type EngineProcess } from './helpers/engine.js';
import { assertHeld, runScenario, sleep } from './helpers/scenario.js';

const LOCK_MS = 5000;
const STALLED_INTERVAL_MS = 2000;

/**
 * Operation transactions the process has open right now: its sessions (found by their client
 * ports) inside a transaction that wrote, whose last statement is one of an operation's (not the
 * outbox relay's, which also runs in workers).
 */
async function openTransactions(db: Knex, worker: EngineProcess): Promise<number> {
  const ports = [...localPortsOf(worker.pid!)];
  if (!ports.length) return 0;
  const { rows } = await db.raw<{ rows: { n: string }[] }>(
    `SELECT count(*) AS n FROM pg_stat_activity WHERE datname = current_database() AND client_port = ANY (?::int[]) AND xact_start IS NOT NULL AND backend_xid IS NOT NULL
        AND query ~* '"operations"|member_cards|"transactions"|balance_ledger|point_ledger|card_qr_state|audit_events|insert into "events"|membership_levels|card_bindings'
        AND query !~* 'WITH batch|webhook_deliveries'`,
    [ports],
  );
  return Number(rows[0]!.n);
}

describe('faults: SIGSTOP a worker past its job lock, then SIGCONT', () => {
  it('the stalled jobs go to the other worker while the first is still alive, and nothing is applied twice', async () => {
    let frozenInTransaction = 0;
    const report = await runScenario({
      title: '6. SIGSTOP one of two workers inside a transaction, past the job lock (5 s) for 9 s, then SIGCONT',
      workers: 2,
      env: { JOB_LOCK_MS: String(LOCK_MS), STALLED_INTERVAL_MS: String(STALLED_INTERVAL_MS) },
      async fault(ctx) {
        const frozen = ctx.engine.workers[0]!;
        // Freeze it, and look: a stopped process's open transactions stay open. Thaw and try again until one is caught mid-transaction.
        for (let tries = 0; tries < 300; tries++) {
          frozen.signal('SIGSTOP');
          frozenInTransaction = await openTransactions(ctx.db, frozen);
          if (frozenInTransaction > 0) break;
          frozen.signal('SIGCONT');
          await sleep(5 + Math.random() * 20);
        }
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
