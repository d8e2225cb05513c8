import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import type { Knex } from 'knex';
import { OperationWaiter } from '../../api/operation-waiter.js';
import { startWorkers } from '../../workers/main.js';
import { createMember, createMerchant } from '../helpers/fixtures.js';
import { testEnv } from '../helpers/env.js';
import { charge, issueQr, sleep } from '../helpers/money.js';
import { deleteQueued } from '../helpers/sql-rows.js';
import { startSystem, type TestSystem } from '../helpers/system.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
// The tsx binary itself: `npx tsx` puts npm in between, which does not pass SIGTERM on to tsx.
const TSX = fileURLToPath(new URL('../../node_modules/.bin/tsx', import.meta.url));

interface Entry {
  child: ChildProcess;
  output: () => string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** Starts a Procfile entry point (api/server.ts, workers/main.ts, workers/scheduler.ts) as its own process. */
function startEntry(file: string, env: Record<string, string>): Entry {
  const child = spawn(TSX, [file], { cwd: ROOT, env: { ...process.env, DATABASE_URL: testEnv.databaseUrl, REDIS_URL: testEnv.redisUrl, NODE_ENV: 'test', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout!.on('data', (c: Buffer) => (output += c.toString()));
  child.stderr!.on('data', (c: Buffer) => (output += c.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  return { child, output: () => output, exited };
}

/** Kills a child this test started, if it is still running (cleanup after a failed assertion). */
async function killEntry(entry: Entry | undefined): Promise<void> {
  if (!entry || entry.child.exitCode !== null || entry.child.signalCode !== null) return;
  entry.child.kill('SIGKILL');
  await entry.exited;
}

const within = <T>(ms: number, what: string, p: Promise<T>): Promise<T> =>
  Promise.race([p, new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms))]);

async function waitUntil(what: string, check: () => Promise<boolean>, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(25);
  }
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/**
 * `cards` standard cards with a live QR each, and one card row locked FOR UPDATE in an open
 * transaction: its charge job will sit in the worker, its batch holding the operation's row, until the lock is released.
 */
async function chargeSetup(sys: TestSystem, cards: number) {
  const { key: merchantKey } = await createMerchant(sys);
  const members = await Promise.all(Array.from({ length: cards }, () => createMember(sys)));
  const qrs = await Promise.all(members.map((m) => issueQr(sys, m.cards[0]!.id)));
  const lock: Knex.Transaction = await sys.deps.db.transaction();
  // FOR NO KEY UPDATE: conflicts with the job's FOR UPDATE, not with the FK check of the operation insert.
  await lock('member_cards').where({ id: members[0]!.cards[0]!.id }).forNoKeyUpdate().first('id');
  const fire = async () => {
    const ops: string[] = [];
    for (const qr of qrs) {
      const res = await charge(sys, merchantKey, { qr, amount: '10.00', payment_method: 'cash' }, { wait: false });
      expect(res.status, res.text).to.equal(202);
      ops.push(res.body.id);
    }
    return ops;
  };
  return { lock, fire };
}

/** A worker's batch holds the operation's row lock: the job is in hand (no commit marks it, see outcomeUpdate). */
const inHand = async (sys: TestSystem, id: string) =>
  (await sys.deps.db.raw<{ rows: unknown[] }>('SELECT 1 FROM operations WHERE id = ? FOR NO KEY UPDATE SKIP LOCKED', [id])).rows.length === 0;
const statusOf = async (sys: TestSystem, id: string) => (await sys.deps.db('operations').where({ id }).first('status')).status as string;
const statuses = async (sys: TestSystem, ids: string[]) =>
  (await sys.deps.db('operations').whereIn('id', ids).select('status')).map((r: { status: string }) => r.status);

describe('graceful shutdown', function () {
  this.timeout(40_000);

  describe('RunningWorkers.close()', () => {
    let sys: TestSystem;
    let lock: Knex.Transaction | undefined;
    before(async () => {
      sys = await startSystem({ CARD_PARTITIONS: 4 });
    });
    after(async () => {
      await lock?.rollback().catch(() => undefined);
      await sys.stop();
    });

    it('lets the job in hand finish, leaves nothing processing, and loses nothing', async () => {
      const setup = await chargeSetup(sys, 12);
      lock = setup.lock;
      const ops = await setup.fire();
      await waitUntil('the locked card’s charge to be in hand', () => inHand(sys, ops[0]!));

      let closed = false;
      const closing = sys.workers!.close().then(() => {
        closed = true;
      });
      await sleep(500);
      expect(closed, 'close() waits for the job in hand').to.equal(false);
      expect(await inHand(sys, ops[0]!), 'still in hand').to.equal(true);

      await lock.commit();
      await within(10_000, 'close() after the job could finish', closing);
      expect(await statusOf(sys, ops[0]!)).to.equal('succeeded');
      const after = await statuses(sys, ops);
      expect(after.filter((s) => s === 'processing'), 'operations left processing').to.deep.equal([]);
      expect(after.every((s) => s === 'succeeded' || s === 'queued'), after.join(',')).to.equal(true);

      // The jobs not yet taken are still in Redis: new workers finish every one of them.
      const again = await startWorkers(sys.deps);
      try {
        await waitUntil('every operation to succeed', async () => (await statuses(sys, ops)).every((s) => s === 'succeeded'));
      } finally {
        await again.close();
      }
      expect(await sys.deps.db('transactions').whereIn('operation_id', ops)).to.have.length(12);
    });
  });

  describe('SIGTERM to the worker process (workers/main.ts)', () => {
    let sys: TestSystem;
    let worker: Entry | undefined;
    let lock: Knex.Transaction | undefined;
    before(async () => {
      sys = await startSystem({}, { workers: false });
    });
    after(async () => {
      await lock?.rollback().catch(() => undefined);
      await killEntry(worker);
      await sys.stop();
    });

    it('finishes the job in hand, exits 0 and leaves no operation processing', async () => {
      const setup = await chargeSetup(sys, 8);
      lock = setup.lock;
      worker = startEntry('workers/main.ts', { QUEUE_PREFIX: sys.config.QUEUE_PREFIX, LOG_LEVEL: 'silent', ENCRYPTION_KEY: sys.config.ENCRYPTION_KEY! });
      const ops = await setup.fire();
      await waitUntil('the worker process to take the locked card’s charge', () => inHand(sys, ops[0]!));
      // Charges on other partitions run meanwhile; those behind the locked one in its partition wait.
      const partitionOf = new Map((await sys.deps.db('operations').whereIn('id', ops).select('id', 'partition')).map((r: { id: string; partition: number }) => [r.id, r.partition]));
      const behind = ops.slice(1).filter((id) => partitionOf.get(id) === partitionOf.get(ops[0]!));
      const others = ops.slice(1).filter((id) => !behind.includes(id));
      expect(others.length).to.be.at.least(3);
      await waitUntil('the charges on other partitions to be done', async () => (await statuses(sys, others)).every((s) => s === 'succeeded'));

      worker.child.kill('SIGTERM');
      await sleep(700);
      expect(worker.child.exitCode, `the process waits for its job; output: ${worker.output()}`).to.equal(null);
      expect(await inHand(sys, ops[0]!), 'still in hand').to.equal(true);

      await lock.commit();
      const exit = await within(10_000, 'worker exit after SIGTERM', worker.exited);
      expect(exit, worker.output()).to.deep.equal({ code: 0, signal: null });
      expect(await statusOf(sys, ops[0]!)).to.equal('succeeded');
      expect(await statuses(sys, others)).to.deep.equal(others.map(() => 'succeeded'));
      // A stopping worker takes no new job: the ones behind were either taken along in the batch of
      // the job in hand (done in its transaction) or stay queued for the next worker.
      const done = await sys.deps.db('operations').where({ id: ops[0] }).first('completed_at');
      for (const row of await sys.deps.db('operations').whereIn('id', behind).select('id', 'status', 'completed_at')) {
        if (row.status === 'queued') continue;
        expect([row.status, row.completed_at?.toISOString()], row.id).to.deep.equal(['succeeded', done.completed_at.toISOString()]);
      }
      expect(await sys.deps.db('operations').whereIn('id', ops).where({ status: 'processing' })).to.deep.equal([]);
    });
  });

  describe('SIGTERM to the web and scheduler processes', () => {
    let sys: TestSystem;
    const webs: Entry[] = [];
    let scheduler: Entry | undefined;
    const aborter = new AbortController();
    /** The payments' keys: no worker serves their queue, so they stay queued. */
    const paymentKeys: string[] = [];
    before(async () => {
      sys = await startSystem({}, { workers: false });
    });
    after(async () => {
      aborter.abort();
      for (const web of webs) await killEntry(web);
      await killEntry(scheduler);
      await deleteQueued(sys.deps.db, await sys.deps.db('operations').whereIn('idempotency_key', paymentKeys).pluck('id'));
      await sys.stop();
    });

    it('the scheduler stops its ticks and exits 0', async () => {
      scheduler = startEntry('workers/scheduler.ts', { QUEUE_PREFIX: `t${randomBytes(4).toString('hex')}`, LOG_LEVEL: 'info' });
      await waitUntil('the scheduler to start', async () => scheduler!.output().includes('scheduler started') || scheduler!.child.exitCode !== null);
      scheduler.child.kill('SIGTERM');
      const exit = await within(10_000, 'scheduler exit after SIGTERM', scheduler.exited);
      expect(exit, scheduler.output()).to.deep.equal({ code: 0, signal: null });
      expect(scheduler.output()).to.contain('scheduler stopping');
    });

    /**
     * Starts api/server.ts on a free port with a queue prefix no worker serves (so a payment stays
     * queued), and sends a payment with `Prefer: wait=N` through it; resolves once the operation is
     * accepted and the request is waiting.
     */
    async function webWithWaitingPayment(waitS: number) {
      const port = await freePort();
      const entry = startEntry('api/server.ts', { PORT: String(port), QUEUE_PREFIX: `t${randomBytes(4).toString('hex')}`, LOG_LEVEL: 'silent', ENCRYPTION_KEY: sys.config.ENCRYPTION_KEY! });
      webs.push(entry);
      const base = `http://127.0.0.1:${port}`;
      await waitUntil('the web process to listen', async () => (await fetch(`${base}/health`).catch(() => undefined))?.status === 200);
      const { key: merchantKey } = await createMerchant(sys);
      const member = await createMember(sys);
      const qr = await issueQr(sys, member.cards[0]!.id);
      const idempotencyKey = `shutdown-${randomUUID()}`;
      paymentKeys.push(idempotencyKey);
      const answered = fetch(`${base}/v1/payments`, {
        method: 'POST',
        headers: { authorization: `Bearer ${merchantKey}`, 'content-type': 'application/json', 'idempotency-key': idempotencyKey, prefer: `wait=${waitS}` },
        body: JSON.stringify({ qr, amount: '10.00', payment_method: 'cash' }),
        signal: aborter.signal,
      }).then(async (res) => ({ status: res.status, body: (await res.json()) as { status: string }, at: Date.now() }));
      await waitUntil('the payment to be accepted', async () => (await sys.deps.db('operations').where({ idempotency_key: idempotencyKey }).first('id')) !== undefined);
      // The wait runs from acceptance, which was before this (a loaded machine can take a while to accept the first request of a new process).
      const accepted = Date.now();
      await sleep(200);
      return { entry, answered, accepted };
    }

    it('the web process ends a request waiting on an operation at SIGTERM instead of after its Prefer: wait', async () => {
      const { entry, answered } = await webWithWaitingPayment(20);
      const signalled = Date.now();
      entry.child.kill('SIGTERM');
      const answer = await within(5000, 'the Prefer: wait=20 request to be answered after SIGTERM', answered);
      expect(answer.status).to.equal(202);
      expect(answer.body.status).to.equal('queued');
      expect(answer.at - signalled).to.be.below(5000);
    });

    it('the web process exits 0 soon after answering the requests it had in hand at SIGTERM', async () => {
      // wait=2: the request ends by itself two seconds after acceptance, whatever stop() does with waits.
      const { entry, answered, accepted } = await webWithWaitingPayment(2);
      const signalled = Date.now();
      entry.child.kill('SIGTERM');
      const answer = await within(5000, 'the Prefer: wait=2 request to be answered', answered);
      expect(answer.status).to.equal(202);
      expect(answer.at - accepted).to.be.below(4000);
      const exit = await within(6000, 'web exit after SIGTERM once its last request was answered (the keep-alive connection holds server.close())', entry.exited);
      expect(exit, entry.output()).to.deep.equal({ code: 0, signal: null });
      expect(Date.now() - signalled).to.be.below(6000);
    });
  });

  describe('OperationWaiter.stop()', () => {
    let sys: TestSystem;
    before(async () => {
      sys = await startSystem({}, { workers: false });
    });
    after(async () => {
      await sys.stop();
    });

    it('ends the waits in progress at once (server shutdown depends on it)', async () => {
      const waiter = new OperationWaiter(sys.deps);
      await waiter.start();
      let reads = 0;
      const started = Date.now();
      const waiting = waiter.waitFor(
        'op_never_done',
        10_000,
        async () => {
          reads++;
          return { status: 'queued' };
        },
        (o) => o.status !== 'queued',
      );
      await sleep(150);
      await waiter.stop();
      const result = await within(1500, 'waitFor to return after stop()', waiting);
      expect(result).to.deep.equal({ status: 'queued' });
      expect(Date.now() - started).to.be.below(1700);
      expect(reads).to.be.at.least(1);
    });
  });
});
