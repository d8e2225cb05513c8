import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LocalRedisSentinel } from '../helpers/redis-topologies.js';
import { assertHeld, runScenario, sleep } from './helpers/scenario.js';
import { onExit } from './helpers/suite.js';

describe('faults: Redis Sentinel failovers under load', () => {
  let dir: string;
  let sentinel: LocalRedisSentinel;
  let unregister: () => void = () => undefined;

  before(async function () {
    this.timeout(60_000);
    dir = mkdtempSync(join(tmpdir(), 'mps-faults-sentinel-'));
    sentinel = await LocalRedisSentinel.start(dir);
    unregister = onExit(() => sentinel.killNow());
  });
  after(async function () {
    this.timeout(30_000);
    await sentinel?.stop();
    unregister();
    rmSync(dir, { recursive: true, force: true });
  });

  it('through a forced failover and a master kill -9, every accepted operation ends exactly once', async () => {
    const masters: number[] = [];
    const report = await runScenario({
      title: '13. Sentinel: SENTINEL FAILOVER under load, then kill -9 of the new master (the sentinels promote the old one back)',
      workers: 2,
      env: { REDIS_URL: sentinel.url },
      async fault(ctx) {
        masters.push(await sentinel.masterPort());
        await ctx.harm(`SENTINEL FAILOVER (master :${masters[0]})`);
        const first = await sentinel.failover();
        masters.push(first.to);
        ctx.note(`the sentinels agree on :${first.to}; :${first.from} is its replica`);
        await sleep(4000);
        await ctx.harm(`kill -9 the master :${first.to}`);
        await sentinel.kill(first.to);
        const second = await sentinel.waitNewMaster(first.to);
        masters.push(second);
        ctx.note(`the sentinels promoted :${second}`);
        await sentinel.restart(first.to);
        ctx.note(`:${first.to} started again on its AOF (the sentinels turn it into a replica)`);
      },
      async verify(ctx, problems) {
        if (masters[1] === masters[0] || masters[2] === masters[1]) problems.push(`a failover did not change the master: ${masters.join(' → ')}`);
        // The engine must be working on the last master: an operation accepted now still completes.
        const dead = ctx.engine.all().filter((p) => !p.alive && !ctx.engine.retired.includes(p));
        if (dead.length) problems.push(`engine processes died: ${dead.map((p) => `${p.name} ${JSON.stringify(p.exits)}`).join(', ')}`);
      },
    });
    assertHeld(report);
  });
});
