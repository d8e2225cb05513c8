import { assertHeld, runScenario, sleep } from './helpers/scenario.js';

describe('faults: slow, stalled and cut connections to Postgres and Redis', () => {
  it('clients time out and retry with the same key; the engine reconnects; nothing is lost or doubled', async () => {
    const report = await runScenario({
      title: '10. TCP proxy between the engine and Postgres/Redis: latency, stalls past the job lock, resets, refusals',
      proxies: true,
      attemptTimeoutMs: 3000,
      waitS: 1,
      afterMs: 6000,
      async fault(ctx) {
        const { pg, redis } = ctx.proxies!;
        await ctx.harm('postgres: +100 ms on every chunk for 3 s');
        pg.latencyMs = 100;
        await sleep(3000);
        pg.latencyMs = 0;
        await ctx.harm(`postgres: stall (bytes held) for 3 s on ${pg.open} connections`);
        pg.stall(true);
        await sleep(3000);
        pg.stall(false);
        await sleep(500);
        await ctx.harm('postgres: reset every connection, refuse new ones for 1 s');
        pg.refusing = true;
        ctx.note(`postgres: ${pg.resetAll()} connections reset`);
        await sleep(1000);
        pg.refusing = false;
        await sleep(500);
        await ctx.harm('redis: +150 ms on every chunk for 2 s');
        redis.latencyMs = 150;
        await sleep(2000);
        redis.latencyMs = 0;
        await ctx.harm(`redis: stall for 6 s (past the 5 s job lock) on ${redis.open} connections`);
        redis.stall(true);
        await sleep(6000);
        redis.stall(false);
        await sleep(500);
        await ctx.harm('redis: reset every connection, refuse new ones for 1 s');
        redis.refusing = true;
        ctx.note(`redis: ${redis.resetAll()} connections reset`);
        await sleep(1000);
        redis.refusing = false;
      },
      async verify(ctx) {
        const { pg, redis } = ctx.proxies!;
        console.log(`     proxy: postgres ${pg.stats.connections} connections, ${pg.stats.resets} reset, ${pg.stats.refused} refused; redis ${redis.stats.connections} connections, ${redis.stats.resets} reset, ${redis.stats.refused} refused`);
      },
    });
    assertHeld(report);
  });

  it('connections that go silent for good (half-open: no FIN, no RST) do not hang operations or the api', async () => {
    const report = await runScenario({
      title: '10b. silent partition: every open connection to Postgres and Redis goes half-open at once (bytes dropped, never closed); new connections work',
      proxies: true,
      attemptTimeoutMs: 3000,
      waitS: 1,
      warmupMs: 3000,
      afterMs: 4000,
      giveUpMs: 30_000,
      async fault(ctx) {
        const { pg, redis } = ctx.proxies!;
        await ctx.harm('every open postgres and redis connection goes silent');
        const n = { pg: pg.blackholeOpen(), redis: redis.blackholeOpen() };
        ctx.note(`${n.pg} postgres and ${n.redis} redis connections are now half-open; new connections pass`);
      },
    });
    assertHeld(report);
  });
});
