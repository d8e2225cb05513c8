import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LocalRedisCluster } from '../helpers/redis-topologies.js';
import { assertHeld, runScenario, sleep } from './helpers/scenario.js';
import { onExit } from './helpers/suite.js';

describe('faults: a Redis Cluster master crashes under load', () => {
  let dir: string;
  let cluster: LocalRedisCluster;
  let unregister: () => void = () => undefined;

  before(async function () {
    this.timeout(60_000);
    dir = mkdtempSync(join(tmpdir(), 'mps-faults-cluster-'));
    cluster = await LocalRedisCluster.start(dir, { replicas: 1 });
    unregister = onExit(() => cluster.killNow());
  });
  after(async function () {
    this.timeout(30_000);
    await cluster?.stop();
    unregister();
    rmSync(dir, { recursive: true, force: true });
  });

  it('its replica takes over the slots, and every accepted operation ends exactly once', async () => {
    const report = await runScenario({
      title: '14. Redis Cluster (3 masters, a replica each): kill -9 of a master under load, its replica promoted, the old master back as replica',
      workers: 2,
      // REDIS_URL empty counts as unset: the engine takes the Cluster's seed nodes instead.
      env: { REDIS_URL: '', REDIS_CLUSTER_NODES: cluster.nodes },
      async fault(ctx) {
        const victim = cluster.ports[0]!;
        await ctx.harm(`kill -9 the master :${victim}`);
        const { to } = await cluster.failover(victim, { crash: true });
        ctx.note(`every node sees its replica :${to} as master of the slots`);
        await sleep(2000);
        await cluster.restart(victim);
        ctx.note(`:${victim} started again on its AOF (it rejoins as a replica of :${to})`);
      },
    });
    assertHeld(report);
  });
});
