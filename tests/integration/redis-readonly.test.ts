import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import type { Redis } from 'ioredis';
import { createRedis, whenReady, type RedisClient } from '../../config/redis.js';
import { freePort, productionRedisArgs, spawnRedis, type RedisProcess } from '../../dev/stack.js';
import { adminClient } from '../helpers/redis-topologies.js';

/**
 * A master demoted under its clients (as a failover does) answers writes with READONLY on sockets
 * that stay open. Here a server is made a replica by hand, then a master again: the factory's
 * worker client must reconnect and resend rather than fail, and its producer client fail fast.
 */
describe('config/redis: READONLY after a demotion', function () {
  this.timeout(30_000);
  let dir: string;
  const servers: RedisProcess[] = [];
  let demoted: { port: number; admin: Redis };
  let other: { port: number };
  const clients: RedisClient[] = [];

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'mps-readonly-'));
    const [a, b] = [await freePort(), await freePort()];
    for (const port of [a, b]) {
      mkdirSync(join(dir, String(port)));
      servers.push(await spawnRedis(productionRedisArgs(port, join(dir, String(port)))));
    }
    demoted = { port: a, admin: adminClient(a) };
    other = { port: b };
  });
  after(async () => {
    for (const c of clients) c.disconnect();
    demoted?.admin.disconnect();
    await Promise.all(servers.map((s) => s.stop()));
    rmSync(dir, { recursive: true, force: true });
  });

  const client = async (role: 'producer' | 'worker') => {
    const c = createRedis({ REDIS_URL: `redis://127.0.0.1:${demoted.port}`, REDIS_CLUSTER_NODES: undefined, REDIS_COMMAND_TIMEOUT_MS: 2000 }, role, () => undefined);
    clients.push(c);
    await whenReady(c);
    return c;
  };

  it('a worker client reconnects and resends its write until the server takes writes again; a producer fails at once', async () => {
    const [worker, producer] = [await client('worker'), await client('producer')];
    await demoted.admin.replicaof('127.0.0.1', other.port);
    const t0 = Date.now();
    const refused = await producer.set('k', 'from-producer').then(
      () => undefined,
      (err: Error) => err.message,
    );
    expect(refused).to.match(/^READONLY/);
    expect(Date.now() - t0, 'the producer is refused at once').to.be.below(500);

    const write = worker.set('k', 'from-worker');
    let settled = false;
    void write.finally(() => (settled = true)).catch(() => undefined);
    await new Promise((r) => setTimeout(r, 500));
    expect(settled, 'the write waits while the server is read-only').to.equal(false);
    await demoted.admin.replicaof('NO', 'ONE');
    expect(await write).to.equal('OK');
    expect(await demoted.admin.get('k')).to.equal('from-worker');
  });
});
