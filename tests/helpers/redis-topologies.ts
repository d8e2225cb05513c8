import { execFile } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import { freePort, productionRedisArgs, spawnRedis, type RedisProcess } from '../../dev/stack.js';

const run = promisify(execFile);
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** `n` distinct free ports (freePort alone may hand the same one out twice). */
async function freePorts(n: number): Promise<number[]> {
  const ports = new Set<number>();
  while (ports.size < n) ports.add(await freePort());
  return [...ports];
}

const auth = (password?: string) => (password ? ['-a', password, '--no-auth-warning'] : []);

/** Asks `port` until `test` holds on the reply of `command`, or fails after `ms` with the last reply. */
async function waitFor(port: number, command: string[], test: (reply: string) => boolean, ms: number, what: string, password?: string): Promise<void> {
  const deadline = Date.now() + ms;
  let last = '';
  while (Date.now() < deadline) {
    last = (await run('redis-cli', ['-p', String(port), ...auth(password), '--no-raw', ...command]).catch((err: Error) => ({ stdout: err.message }))).stdout;
    if (test(last)) return;
    await sleep(100);
  }
  throw new Error(`${what} not reached within ${ms} ms; last reply of ${command.join(' ')} on :${port}:\n${last}`);
}

/**
 * A direct, quiet client of one server for the harness's own looks and pokes (FLUSHALL, REPLICAOF,
 * CONFIG on one node): not of a deployment, so not through config/redis.ts, and failing rather
 * than waiting when that server is down.
 */
export function adminClient(port: number, password?: string): Redis {
  const client = new Redis({ port, host: '127.0.0.1', password, maxRetriesPerRequest: 1, lazyConnect: false });
  client.on('error', () => undefined);
  return client;
}

/** `redis-cli ROLE` in raw form: ["master", …] or ["slave", host, masterPort, state, …]. */
async function role(port: number): Promise<string[]> {
  return (await run('redis-cli', ['-p', String(port), 'role'])).stdout.trim().split('\n');
}

interface DataServer {
  port: number;
  args: string[];
  process?: RedisProcess;
}

/** Data servers that can be killed and started again on their ports and data, to play failures. */
class RedisServers {
  constructor(protected readonly data: DataServer[]) {}

  /** kill -9 of the server on `port`. */
  async kill(port: number): Promise<void> {
    const server = this.server(port);
    await server.process?.stop('SIGKILL');
    server.process = undefined;
  }

  /** Starts a killed server again on its port and data. */
  async restart(port: number): Promise<void> {
    const server = this.server(port);
    server.process ??= await spawnRedis(server.args);
  }

  protected live(): number[] {
    return this.data.filter((s) => s.process).map((s) => s.port);
  }

  private server(port: number): DataServer {
    const server = this.data.find((s) => s.port === port);
    if (!server) throw new Error(`no data server on :${port}`);
    return server;
  }

  protected processes(): RedisProcess[] {
    return this.data.flatMap((s) => (s.process ? [s.process] : []));
  }

  async stop(): Promise<void> {
    await Promise.all(this.processes().map((p) => p.stop()));
  }

  /** Synchronous last resort (process exit): a failing run must not leave servers behind. */
  killNow(): void {
    for (const p of this.processes()) p.process.kill('SIGKILL');
  }
}

/**
 * A real Redis Cluster of `masters` masters with `replicas` replicas each on free ports under
 * `dir`, with the production settings (AOF, noeviction), its 16384 slots split by
 * `redis-cli --cluster create`; a node notices a dead peer after 3 s (cluster-node-timeout).
 */
export class LocalRedisCluster extends RedisServers {
  private constructor(
    data: DataServer[],
    /** The masters' ports as created (a failover changes who is master, not this list). */
    readonly ports: number[],
  ) {
    super(data);
  }

  static async start(dir: string, options: { masters?: number; replicas?: number } = {}): Promise<LocalRedisCluster> {
    const { masters = 3, replicas = 0 } = options;
    const count = masters * (1 + replicas);
    const ports = await freePorts(count * 2);
    const data: DataServer[] = ports.slice(0, count).map((port, i) => {
      const nodeDir = join(dir, `node-${port}`);
      mkdirSync(nodeDir, { recursive: true });
      // The bus port is given explicitly: the default port + 10000 may be taken or past 65535.
      const clusterArgs = ['--cluster-enabled', 'yes', '--cluster-config-file', join(nodeDir, 'nodes.conf'), '--cluster-port', String(ports[count + i]), '--cluster-node-timeout', '3000'];
      return { port, args: [...productionRedisArgs(port, nodeDir), ...clusterArgs] };
    });
    const cluster = new LocalRedisCluster(data, data.slice(0, masters).map((d) => d.port));
    try {
      for (const server of data) server.process = await spawnRedis(server.args);
      // The first `masters` nodes get the slots, the others replicate them.
      await run('redis-cli', ['--cluster', 'create', ...data.map((d) => `127.0.0.1:${d.port}`), '--cluster-replicas', String(replicas), '--cluster-yes']);
      await cluster.ok();
      for (const { port } of data.slice(masters)) await waitFor(port, ['info', 'replication'], (r) => r.includes('master_link_status:up'), 15_000, 'replica in sync');
      return cluster;
    } catch (err) {
      await cluster.stop();
      throw err;
    }
  }

  /** REDIS_CLUSTER_NODES for the engine: the first masters' host:port. */
  get nodes(): string {
    return this.ports.map((p) => `127.0.0.1:${p}`).join(',');
  }

  /**
   * Promotes a replica of the master on `masterPort`: by CLUSTER FAILOVER on the replica
   * (coordinated: the master stops taking writes until the replica caught up), or with `crash`
   * by kill -9 of the master (the replica takes over once the others deem it failed). Resolves
   * once every live node sees the replica as master and the cluster is ok.
   */
  async failover(masterPort: number, options: { crash?: boolean } = {}): Promise<{ from: number; to: number }> {
    const roles = await Promise.all(this.live().map(async (port) => ({ port, role: await role(port) })));
    const replica = roles.find((r) => r.role[0] === 'slave' && Number(r.role[2]) === masterPort)?.port;
    if (!replica) throw new Error(`no replica of :${masterPort}`);
    if (options.crash) await this.kill(masterPort);
    else await run('redis-cli', ['-p', String(replica), 'cluster', 'failover']);
    await waitFor(replica, ['role'], (r) => r.includes('"master"'), 30_000, `:${replica} as master`);
    // Every node must have learnt the new owner of the slots before clients are sent on.
    const master = new RegExp(`:${replica}@\\d+\\S* (myself,)?master`);
    for (const port of this.live()) await waitFor(port, ['cluster', 'nodes'], (r) => master.test(r), 30_000, `:${port} seeing :${replica} as master`);
    await this.ok();
    return { from: masterPort, to: replica };
  }

  private async ok(): Promise<void> {
    for (const port of this.live()) await waitFor(port, ['cluster', 'info'], (r) => r.includes('cluster_state:ok'), 30_000, 'cluster_state:ok');
  }
}

export const SENTINEL_MASTER = 'mps';

/**
 * A real Sentinel deployment under `dir`: a master, one replica and three sentinels (quorum 2) on
 * free ports, quick to fail over (down after 1 s); with `password`, the data servers require it
 * (the sentinels do not). Servers can be killed and started again on their ports to play failures.
 */
export class LocalRedisSentinel extends RedisServers {
  private constructor(
    readonly dir: string,
    data: DataServer[],
    readonly sentinelPorts: number[],
    private readonly sentinels: RedisProcess[],
    readonly password?: string,
  ) {
    super(data);
  }

  static async start(dir: string, options: { password?: string } = {}): Promise<LocalRedisSentinel> {
    const { password } = options;
    const [masterPort, replicaPort, ...sentinelPorts] = await freePorts(5);
    const data: DataServer[] = [masterPort!, replicaPort!].map((port, i) => {
      const serverDir = join(dir, `redis-${port}`);
      mkdirSync(serverDir, { recursive: true });
      // Every data server may become the master, or a replica of the other: each needs both settings.
      const credentials = password ? ['--requirepass', password, '--masterauth', password] : [];
      return { port, args: [...productionRedisArgs(port, serverDir), ...credentials, ...(i === 1 ? ['--replicaof', '127.0.0.1', String(masterPort)] : [])] };
    });
    const deployment = new LocalRedisSentinel(dir, data, sentinelPorts, [], password);
    try {
      for (const server of data) server.process = await spawnRedis(server.args);
      await waitFor(replicaPort!, ['info', 'replication'], (r) => r.includes('master_link_status:up'), 15_000, 'replica in sync', password);
      for (const port of sentinelPorts) {
        const conf = join(dir, `sentinel-${port}.conf`);
        // Sentinel rewrites its file as it learns the deployment, so each has its own.
        writeFileSync(
          conf,
          [`port ${port}`, 'bind 127.0.0.1', `dir ${dir}`, `sentinel monitor ${SENTINEL_MASTER} 127.0.0.1 ${masterPort} 2`, `sentinel down-after-milliseconds ${SENTINEL_MASTER} 1000`, `sentinel failover-timeout ${SENTINEL_MASTER} 10000`, ...(password ? [`sentinel auth-pass ${SENTINEL_MASTER} ${password}`] : []), ''].join('\n'),
        );
        deployment.sentinels.push(await spawnRedis([conf, '--sentinel'], { readyText: '+monitor master' }));
      }
      // A failover needs the replica known to the sentinels and the sentinels known to each other (hello messages, every 2 s).
      for (const port of sentinelPorts) {
        await waitFor(port, ['sentinel', 'replicas', SENTINEL_MASTER], (r) => r.includes(String(replicaPort)), 20_000, 'replica discovered');
        await waitFor(port, ['sentinel', 'sentinels', SENTINEL_MASTER], (r) => sentinelPorts.filter((p) => p !== port).every((p) => r.includes(String(p))), 20_000, 'sentinels discovered');
      }
      return deployment;
    } catch (err) {
      await deployment.stop();
      throw err;
    }
  }

  /** REDIS_URL for the engine. */
  get url(): string {
    return `redis+sentinel://${this.password ? `:${encodeURIComponent(this.password)}@` : ''}${this.sentinelPorts.map((p) => `127.0.0.1:${p}`).join(',')}/${SENTINEL_MASTER}`;
  }

  /** The port the sentinels name as master now (asks the first one that answers). */
  async masterPort(): Promise<number> {
    for (const port of this.sentinelPorts) {
      const reply = await run('redis-cli', ['-p', String(port), 'sentinel', 'get-master-addr-by-name', SENTINEL_MASTER]).catch(() => undefined);
      const masterPort = Number(reply?.stdout.trim().split('\n')[1]);
      if (masterPort) return masterPort;
    }
    throw new Error('no sentinel answered get-master-addr-by-name');
  }

  /**
   * Waits until every sentinel names a master other than `old` and that server says it is a
   * master; returns its port.
   */
  async waitNewMaster(old: number, ms = 30_000): Promise<number> {
    for (const port of this.sentinelPorts) await waitFor(port, ['sentinel', 'get-master-addr-by-name', SENTINEL_MASTER], (r) => /\d/.test(r) && !r.includes(`"${old}"`), ms, `sentinel :${port} naming a new master`);
    const now = await this.masterPort();
    await waitFor(now, ['role'], (r) => r.includes('"master"'), ms, `:${now} as master`, this.password);
    return now;
  }

  /** SENTINEL FAILOVER (the replica is promoted without waiting for a vote) and its completion. */
  async failover(): Promise<{ from: number; to: number }> {
    const from = await this.masterPort();
    await run('redis-cli', ['-p', String(this.sentinelPorts[0]), 'sentinel', 'failover', SENTINEL_MASTER]);
    return { from, to: await this.waitNewMaster(from) };
  }

  protected override processes(): RedisProcess[] {
    return [...this.sentinels, ...super.processes()];
  }
}
