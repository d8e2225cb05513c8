import { expect } from 'chai';
import { parseClusterNodes, parseRedisTarget, parseRedisUrl, RedisTargetError } from '../../config/redis-target.js';

describe('config/redis-target: the Redis deployment from REDIS_URL or REDIS_CLUSTER_NODES', () => {
  it('is undefined when neither is set', () => {
    expect(parseRedisTarget({})).to.equal(undefined);
  });

  it('leaves one node to ioredis (redis:// and rediss:// as given)', () => {
    expect(parseRedisUrl('rediss://:pw@cache:6380/2')).to.deep.equal({ kind: 'single', url: 'rediss://:pw@cache:6380/2' });
  });

  it('reads Sentinel: every sentinel, the master name, db, credentials, sentinel password', () => {
    expect(parseRedisUrl('redis+sentinel://app:p%40ss@10.0.0.1:26380,sentinel-b,[::1]:26381/main-redis/3?sentinelPassword=s3cret')).to.deep.equal({
      kind: 'sentinel',
      sentinels: [
        { host: '10.0.0.1', port: 26380 },
        { host: 'sentinel-b', port: 26379 },
        { host: '::1', port: 26381 },
      ],
      masterName: 'main-redis',
      db: 3,
      username: 'app',
      password: 'p@ss',
      sentinelPassword: 's3cret',
    });
    expect(parseRedisUrl('redis+sentinel://s1:26379/mps')).to.include({ kind: 'sentinel', masterName: 'mps', db: 0, password: undefined });
  });

  it('reads Cluster seed nodes, with optional credentials and TLS before the first', () => {
    expect(parseClusterNodes('n1:7000, n2:7001,n3')).to.deep.equal({
      kind: 'cluster',
      nodes: [
        { host: 'n1', port: 7000 },
        { host: 'n2', port: 7001 },
        { host: 'n3', port: 6379 },
      ],
      tls: false,
      username: undefined,
      password: undefined,
    });
    expect(parseClusterNodes('rediss://:tok@cfg.example:6379')).to.deep.equal({ kind: 'cluster', nodes: [{ host: 'cfg.example', port: 6379 }], tls: true, username: undefined, password: 'tok' });
  });

  const bad: [string, () => unknown, RegExp][] = [
    ['a sentinel URL without master name', () => parseRedisUrl('redis+sentinel://s1:26379'), /master name/],
    ['another scheme', () => parseRedisUrl('memcached://m:11211'), /must be redis:\/\//],
    ['a port out of range', () => parseClusterNodes('n1:65536'), /"n1:65536" is not host:port/],
    ['an empty node', () => parseClusterNodes('n1:7000,'), /"" is not host:port/],
    ['a db on a cluster', () => parseClusterNodes('redis://n1:7000/1'), /no db number/],
    ['a bad %-escape', () => parseRedisUrl('redis+sentinel://:%zz@s1/mps'), /%-escape/],
    ['both variables', () => parseRedisTarget({ REDIS_URL: 'redis://a', REDIS_CLUSTER_NODES: 'b:1' }), /not both/],
  ];
  for (const [what, parse, message] of bad) {
    it(`refuses ${what}`, () => {
      expect(parse).to.throw(RedisTargetError, message);
    });
  }
});
