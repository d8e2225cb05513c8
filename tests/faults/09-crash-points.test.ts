import type { EngineProcess } from './helpers/engine.js';
import { assertHeld, runScenario, type ScenarioContext } from './helpers/scenario.js';

const NTH = 25;

/** Runs a worker with MPS_CRASH_AT until it kills itself there, then a normal worker in its place. */
async function crashAt(ctx: ScenarioContext, point: 'before-commit' | 'after-commit-before-ack', exits: string[]): Promise<void> {
  const normal = ctx.engine.workers[0]!;
  const crashing: EngineProcess = await ctx.engine.replaceWorker(normal, { MPS_CRASH_AT: `${point}@${NTH}` }, true);
  ctx.note(`${crashing.name} runs with MPS_CRASH_AT=${point}@${NTH}`);
  const exit = await crashing.waitExit(30_000);
  exits.push(`${point}: ${exit.signal ?? exit.code}`);
  await ctx.harm(`${crashing.name} killed itself (${exit.signal ?? exit.code}) at its ${NTH}th ${point}`);
  const fresh = await ctx.engine.replaceWorker(crashing);
  ctx.note(`${fresh.name} started without MPS_CRASH_AT`);
}

describe('faults: crash points inside the transaction and between commit and ack', () => {
  it('a crash before commit rolls back and the job runs again; a crash after commit is not applied twice', async () => {
    const exits: string[] = [];
    const report = await runScenario({
      title: `9. worker SIGKILLs itself at before-commit@${NTH}, then at after-commit-before-ack@${NTH}; restarted without the variable`,
      async fault(ctx) {
        await crashAt(ctx, 'before-commit', exits);
        await crashAt(ctx, 'after-commit-before-ack', exits);
      },
      async verify(_ctx, problems) {
        for (const e of exits) if (!e.endsWith('SIGKILL')) problems.push(`crash point did not end the worker with SIGKILL: ${e}`);
        if (exits.length !== 2) problems.push(`expected two crashes, got ${exits.join(', ')}`);
      },
    });
    assertHeld(report);
  });
});
