import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { adminClient } from '../helpers/redis-topologies.js';
import { assertHeld, runScenario, sleep } from './helpers/scenario.js';

describe('faults: Redis loses everything with operations queued', () => {
  it('the reconciler drives every operation from Postgres again, and none runs twice', async () => {
    const report = await runScenario({
      title: '4. Redis loses all data: FLUSHALL under a backlog, then a restart without its AOF',
      async fault(ctx) {
        const { redis } = ctx.servers;
        // Build a backlog: the worker is paused (well inside its lock time), so new jobs pile up in Redis.
        const worker = ctx.engine.workers[0]!;
        worker.signal('SIGSTOP');
        await sleep(2500);
        const client = adminClient(redis.port);
        const keys = await client.dbsize();
        await ctx.harm(`FLUSHALL (${keys} keys) with the worker paused`);
        await client.flushall();
        client.disconnect();
        worker.signal('SIGCONT');
        await sleep(4000);
        await ctx.harm('redis SIGKILL, AOF deleted, started empty');
        await redis.stop('SIGKILL');
        rmSync(join(redis.dir, 'appendonlydir'), { recursive: true, force: true });
        await redis.start();
        ctx.note('redis is back, empty');
      },
    });
    assertHeld(report);
  });
});
