/**
 * Which Redis deployment the processes talk to, read from REDIS_URL or REDIS_CLUSTER_NODES. Pure
 * parsing (no ioredis), so that config/env.ts can reject a bad value at startup with the reason.
 *
 *   REDIS_URL=redis://[user:password@]host:6379[/db]        one node (rediss:// for TLS)
 *   REDIS_URL=redis+sentinel://[user:password@]host:26379,host:26379/master-name[/db][?sentinelPassword=…]
 *   REDIS_CLUSTER_NODES=host:6379,host:6379,…               Redis Cluster seed nodes
 *   REDIS_CLUSTER_NODES=redis://[user:]password@host:6379,host:6379   (rediss:// for TLS)
 */
export interface HostPort {
  host: string;
  port: number;
}

interface Credentials {
  username?: string;
  password?: string;
}

export type RedisTarget =
  | { kind: 'single'; url: string }
  | ({ kind: 'sentinel'; sentinels: HostPort[]; masterName: string; db: number; sentinelPassword?: string } & Credentials)
  | ({ kind: 'cluster'; nodes: HostPort[]; tls: boolean } & Credentials);

const REDIS_URL_FORMS = 'redis://host:port[/db], rediss://host:port[/db] or redis+sentinel://host:port,host:port/master-name[/db]';
const CLUSTER_NODES_FORM = 'host:port,host:port,… (optionally redis://[user:]password@ or rediss:// before the first node)';

export class RedisTargetError extends Error {}

export const BOTH_SET = 'set REDIS_URL or REDIS_CLUSTER_NODES, not both';

const SENTINEL_PORT = 26379;
const REDIS_PORT = 6379;

// scheme :// [user[:password]@] hosts [/path] [?query]
const LIST_URL = /^([a-z+]+):\/\/(?:([^:@/]*)(?::([^@/]*))?@)?([^/?]*)(?:\/([^?]*))?(?:\?(.*))?$/;

/** REDIS_URL and REDIS_CLUSTER_NODES as one target; undefined when neither is set. Throws RedisTargetError. */
export function parseRedisTarget(env: { REDIS_URL?: string; REDIS_CLUSTER_NODES?: string }): RedisTarget | undefined {
  if (env.REDIS_URL && env.REDIS_CLUSTER_NODES) throw new RedisTargetError(BOTH_SET);
  if (env.REDIS_CLUSTER_NODES) return parseClusterNodes(env.REDIS_CLUSTER_NODES);
  if (env.REDIS_URL) return parseRedisUrl(env.REDIS_URL);
  return undefined;
}

export function parseRedisUrl(url: string): RedisTarget {
  if (/^rediss?:\/\//.test(url)) return { kind: 'single', url }; // ioredis reads host, port, db, credentials and TLS itself
  if (!url.startsWith('redis+sentinel://')) throw new RedisTargetError(`must be ${REDIS_URL_FORMS}`);
  const m = LIST_URL.exec(url);
  const [masterName, db = '0', ...rest] = (m?.[5] ?? '').split('/');
  if (!m || !masterName || rest.length || !/^\d{1,2}$/.test(db)) throw new RedisTargetError('must be redis+sentinel://host:port,host:port/master-name[/db]: a master name, then at most a db number');
  const sentinelPassword = new URLSearchParams(m[6] ?? '').get('sentinelPassword') ?? undefined;
  return { kind: 'sentinel', sentinels: parseHosts(m[4]!, SENTINEL_PORT), masterName: decode(masterName), db: Number(db), sentinelPassword, ...credentials(m[2], m[3]) };
}

export function parseClusterNodes(value: string): RedisTarget {
  const withScheme = /^[a-z+]+:\/\//.test(value);
  const m = withScheme ? LIST_URL.exec(value) : undefined;
  if (withScheme && (!m || !['redis', 'rediss'].includes(m[1]!) || m[5] || m[6])) throw new RedisTargetError(`must be ${CLUSTER_NODES_FORM}; a cluster has no db number`);
  return { kind: 'cluster', nodes: parseHosts(m ? m[4]! : value, REDIS_PORT), tls: m?.[1] === 'rediss', ...credentials(m?.[2], m?.[3]) };
}

function credentials(username: string | undefined, password: string | undefined): Credentials {
  return { username: username ? decode(username) : undefined, password: password ? decode(password) : undefined };
}

function decode(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    throw new RedisTargetError('has a bad %-escape in its user, password or master name');
  }
}

/** "a:1,b:2,[::1]:3" → host/port pairs; a missing port is the default one. */
function parseHosts(list: string, defaultPort: number): HostPort[] {
  return list.split(',').map((entry) => {
    const m = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+)(?::(\d{1,5}))?$/.exec(entry.trim());
    const port = m?.[2] === undefined ? defaultPort : Number(m[2]);
    if (!m || port < 1 || port > 65535) throw new RedisTargetError(`"${entry}" is not host:port`);
    return { host: m[1]!.replace(/^\[(.*)\]$/, '$1'), port };
  });
}
