import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { Cluster } from 'ioredis';
import { operationDoneChannel } from '../../db/operation-done.js';
import { doctor } from '../../cli/doctor.js';
import { createRedis, redisServers, whenReady, type RedisClient } from '../../config/redis.js';
import { partitionOf, partitionQueueName } from '../../jobs/names.js';
import { runRelayOutbox } from '../../jobs/relay-outbox.js';
import { createMember, createMerchant, issueCard, type CardJson } from '../helpers/fixtures.js';
import { charge, expectLedgersMatch, expectSucceeded, getCard, issueQr, recharge, refund, sleep, type OperationJson } from '../helpers/money.js';
import { adminClient, LocalRedisCluster, LocalRedisSentinel } from '../helpers/redis-topologies.js';
import { startSystem, type TestSystem } from '../helpers/system.js';
import { startReceiver } from '../helpers/webhook-receiver.js';

const newCard = async (sys: TestSystem) => issueCard(sys, { type: 'prepaid', ownerMemberId: (await createMember(sys)).id });

/**
 * The money path end to end on one system: a member and a prepaid card, a recharge by the admin,
 * a QR, a payment and a partial refund each answered inline (Prefer: wait), and balance and
 * points equal to the sums of their ledgers.
 */
async function moneyFlow(sys: TestSystem, merchantKey: string, card?: CardJson): Promise<{ payment: OperationJson }> {
  card ??= await newCard(sys);
  const recharged = expectSucceeded(await recharge(sys, card.id, { amount: '500.00' }), 'recharge');
  expect(recharged.result).to.include({ amount: '500.00', balance: '500.00' });
  const qr = await issueQr(sys, card.id);
  const payment = expectSucceeded(await charge(sys, merchantKey, { qr, amount: '120.00' }), 'payment');
  expect(payment.result).to.include({ final_amount: '120.00', points_earned: 120 });
  const refunded = expectSucceeded(await refund(sys, merchantKey, { original_tx_no: payment.result!.tx_no, amount: '20.00' }), 'refund');
  expect(refunded.result!.refund_tx_no).to.match(/^REF\d+$/); // the exact format is the refunds tests' business
  // 500 − 120 + 20; points 120 earned, 120 × 20/120 = 20 clawed back.
  await expectLedgersMatch(sys, card.id, { balance: 40_000, points: 100 });
  expect(await getCard(sys, card.id)).to.include({ balance: '400.00', points: 100 });
  return { payment };
}

/** Retries a write through the API's fail-fast client until it lands (after a failover); returns how long that took. */
async function untilWritable(sys: TestSystem, boundMs = 10_000): Promise<number> {
  const t0 = Date.now();
  for (;;) {
    const ok = await sys.deps.redis.set(`${sys.config.QUEUE_PREFIX}:probe`, '1').then(
      () => true,
      () => false,
    );
    if (ok) return Date.now() - t0;
    expect(Date.now() - t0, 'the API client writing again after the failover').to.be.below(boundMs);
    await sleep(100);
  }
}

describe('e2e: the money flow on a Redis Cluster and on Sentinel', function () {
  this.timeout(60_000);
  let dir: string;

  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'mps-redis-topologies-'));
  });
  after(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  describe('Redis Cluster, 3 masters with a replica each (REDIS_CLUSTER_NODES)', () => {
    let cluster: LocalRedisCluster;
    let sys: TestSystem;
    let merchantKey: string;
    const clients: RedisClient[] = [];
    const quiet = () => undefined;

    before(async () => {
      cluster = await LocalRedisCluster.start(join(dir, 'cluster'), { replicas: 1 });
      sys = await startSystem({ RATE_LIMIT_QR_VALIDATE_PER_KEY_PER_MIN: 3 }, { redis: { REDIS_CLUSTER_NODES: cluster.nodes } });
      merchantKey = (await createMerchant(sys)).key;
    });
    after(async () => {
      for (const c of clients) c.disconnect();
      await sys?.stop();
      await cluster?.stop();
    });

    it('the API gets a Cluster client from the factory', () => {
      expect(sys.deps.redis).to.be.instanceOf(Cluster);
    });

    it('runs the money flow (recharge, QR payment, refund, all with Prefer: wait); balances = Σ ledger', async () => {
      await moneyFlow(sys, merchantKey);
    });

    it('spreads the partition queues over every master, each queue in a single slot', async () => {
      const masters = redisServers(sys.deps.redis);
      expect(masters).to.have.length(3);
      // startWorkers set every partition's global concurrency: each partition has its meta key somewhere.
      const keysByMaster = await Promise.all(masters.map((m) => m.keys(`${sys.config.QUEUE_PREFIX}:card-ops-*`)));
      for (const keys of keysByMaster) expect(keys, 'partition keys on every master').to.not.be.empty;
      for (let p = 0; p < sys.config.CARD_PARTITIONS; p++) {
        const keys = keysByMaster.flat().filter((k) => k.startsWith(`${sys.config.QUEUE_PREFIX}:${partitionQueueName(p)}:`));
        expect(keys, `keys of partition ${p}`).to.not.be.empty;
        const slots = new Set(await Promise.all(keys.map((k) => masters[0]!.cluster('KEYSLOT', k))));
        expect(slots.size, `slots of partition ${p}`).to.equal(1);
      }
    });

    it('announces completions over the cluster’s pub/sub to a subscriber on any node', async () => {
      const subscriber = createRedis(sys.config, 'worker', quiet, { lazyConnect: true });
      clients.push(subscriber);
      const heard: string[] = [];
      subscriber.on('message', (_channel: string, message: string) => heard.push(message));
      await subscriber.connect();
      await subscriber.subscribe(operationDoneChannel(sys.config.QUEUE_PREFIX));
      const { payment } = await moneyFlow(sys, merchantKey);
      for (let i = 0; i < 50 && !heard.some((m) => m.includes(payment.id)); i++) await sleep(20);
      expect(heard.some((m) => m.includes(payment.id)), 'the payment was announced').to.equal(true);
    });

    it('counts rate limits in the cluster (a broken limiter would let every request through)', async () => {
      const statuses: number[] = [];
      for (let i = 0; i < 7; i++) statuses.push((await sys.http.post('/v1/qr/validate', { qr: 'mpsq_not-a-real-token' }, { key: merchantKey })).status);
      // Limit 3 a minute: even if a minute turns during the loop, 7 requests meet the limit.
      expect(statuses.slice(0, 3)).to.deep.equal([200, 200, 200]);
      expect(statuses).to.include(429);
    });

    it('holds a hanging webhook endpoint to its slots, counted in the cluster', async () => {
      const hanging = await startReceiver('hang');
      try {
        const m = await createMerchant(sys);
        const endpoint = await sys.http.post('/v1/merchant/webhook-endpoints', { url: hanging.url, events: ['payment.succeeded'] }, { key: m.key });
        expect(endpoint.status, endpoint.text).to.equal(201);
        const card = await issueCard(sys, { type: 'prepaid', ownerMemberId: (await createMember(sys)).id });
        expectSucceeded(await recharge(sys, card.id, { amount: '100.00' }));
        for (let i = 0; i < 4; i++) expectSucceeded(await charge(sys, m.key, { qr: await issueQr(sys, card.id), amount: '1.00' }));
        await runRelayOutbox(sys.deps); // as the scheduler does every second: events → deliveries → jobs
        const slots = sys.config.WEBHOOK_PER_ENDPOINT_CONCURRENCY;
        await hanging.waitForRequests(slots, { timeoutMs: 10_000 });
        // The other deliveries are deferred while the slots are taken (retried every 1–2 s); the
        // hanging attempts hold theirs until WEBHOOK_TIMEOUT_MS (10 s), or until the receiver closes.
        await sleep(2500);
        expect(hanging.requests, 'attempts in flight at the hanging endpoint').to.have.length(slots);
        expect(await sys.deps.redis.get(`${sys.config.QUEUE_PREFIX}:wh-inflight:${endpoint.body.id}`)).to.equal(String(slots));
      } finally {
        await hanging.close();
      }
    });

    it('the doctor checks every master, and names the one that may evict jobs', async () => {
      const redisCheck = async () => (await doctor(sys.deps)).find((c) => c.name === 'redis')!;
      const healthy = await redisCheck();
      expect(healthy.level, healthy.detail).to.equal('ok');
      expect(healthy.detail).to.match(/^Cluster \(3 seed nodes\), 3 masters: Redis [\d.]+; maxmemory-policy=noeviction; appendonly=yes$/);
      const one = redisServers(sys.deps.redis)[1]!;
      await one.config('SET', 'maxmemory-policy', 'allkeys-lru');
      try {
        const bad = await redisCheck();
        expect(bad.level).to.equal('fail');
        expect(bad.detail).to.contain(`${one.options.host}:${one.options.port}: maxmemory-policy=allkeys-lru (must be noeviction`);
      } finally {
        await one.config('SET', 'maxmemory-policy', 'noeviction');
      }
    });

    it('after CLUSTER FAILOVER of the master holding a card’s partition, the flow on that card runs again', async () => {
      const card = await newCard(sys);
      const queue = `${sys.config.QUEUE_PREFIX}:${partitionQueueName(partitionOf(card.id, sys.config.CARD_PARTITIONS))}:meta`;
      const slot = await sys.deps.redis.cluster('KEYSLOT', queue);
      const range = (await sys.deps.redis.cluster('SLOTS')).find(([first, last]) => first <= slot && slot <= last);
      const owner = range?.[2]?.[1];
      expect(owner, `the master of slot ${slot}`).to.be.a('number');
      const { to } = await cluster.failover(owner!);
      const ms = await untilWritable(sys);
      console.log(`      [failover] master :${owner} → its replica :${to}; the API client wrote again ${ms} ms after every node agreed`);
      await moneyFlow(sys, merchantKey, card);
      expect(redisServers(sys.deps.redis).map((m) => m.options.port)).to.include(to);
    });

    it('the fail-fast producer reaches every slot (writes to keys on all three masters)', async () => {
      const producer = createRedis(sys.config, 'producer', quiet);
      clients.push(producer);
      await whenReady(producer);
      const tags = Array.from({ length: 30 }, (_, i) => `probe-{${i}}`);
      await Promise.all(tags.map((k) => producer.set(`${sys.config.QUEUE_PREFIX}:${k}`, '1', 'PX', 60_000)));
      const owners = await Promise.all(redisServers(producer).map((m) => m.keys(`${sys.config.QUEUE_PREFIX}:probe-*`)));
      expect(owners.map((keys) => keys.length).reduce((a, b) => a + b)).to.equal(30);
      for (const keys of owners) expect(keys).to.not.be.empty;
    });
  });

  describe('Sentinel: a master, a replica, 3 sentinels, a password (REDIS_URL=redis+sentinel://:…@…)', () => {
    let sentinel: LocalRedisSentinel;
    let sys: TestSystem;
    let merchantKey: string;

    before(async () => {
      sentinel = await LocalRedisSentinel.start(join(dir, 'sentinel'), { password: 'p@ss/word' });
      sys = await startSystem({}, { redis: { REDIS_URL: sentinel.url } });
      merchantKey = (await createMerchant(sys)).key;
    });
    after(async () => {
      await sys?.stop();
      await sentinel?.stop();
    });

    it('runs the money flow on the master the sentinels name', async () => {
      await moneyFlow(sys, merchantKey);
      const master = adminClient(await sentinel.masterPort(), sentinel.password);
      const anonymous = adminClient(await sentinel.masterPort());
      try {
        expect(await master.keys(`${sys.config.QUEUE_PREFIX}:card-ops-*`), 'queue keys on the master').to.not.be.empty;
        const refused = await anonymous.ping().then(
          () => 'answered',
          (err: Error) => err.message,
        );
        expect(refused, 'the password is in force').to.match(/^NOAUTH/);
      } finally {
        master.disconnect();
        anonymous.disconnect();
      }
    });

    it('after SENTINEL FAILOVER the API and the workers find the new master, and the flow runs again', async () => {
      const { from, to } = await sentinel.failover();
      expect(to).to.not.equal(from);
      // The API's client fails fast while it reconnects: it must be writing again within a few seconds.
      const ms = await untilWritable(sys);
      console.log(`      [failover] master :${from} → :${to}; the API client wrote again ${ms} ms after the sentinels agreed`);
      await moneyFlow(sys, merchantKey);
    });
  });
});
