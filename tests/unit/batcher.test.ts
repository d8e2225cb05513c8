import { expect } from 'chai';
import fc from 'fast-check';
import { Batcher, type BatchRunner } from '../../db/batcher.js';

/** Fixed, so that a failure reproduces; FC_SEED / FC_RUNS to explore (as decisions.property.test.ts). */
const SEED = Number(process.env.FC_SEED ?? 20_261_201);
const RUNS = Number(process.env.FC_RUNS ?? 200);
const options = { seed: SEED, numRuns: RUNS };

/** Lets every pending setImmediate (and the microtasks between) run: `n` turns of the event loop. */
const turns = async (n = 5) => {
  for (let i = 0; i < n; i++) await new Promise<void>((resolve) => setImmediate(resolve));
};

interface Deferred {
  promise: Promise<void>;
  release(): void;
}
function deferred(): Deferred {
  let release!: () => void;
  const promise = new Promise<void>((resolve) => {
    release = resolve;
  });
  return { promise, release };
}

type Call = { kind: 'one'; items: number[] } | { kind: 'many'; items: number[] };

/**
 * A runner that records its calls and answers `out-<item>`; `many` and `one` may be held until
 * released, and `failing` items make a `many` that holds them reject and their own `one` reject.
 */
function recordingRunner(opts: { failing?: Set<number>; hold?: boolean; manyAlwaysFails?: boolean } = {}) {
  const calls: Call[] = [];
  const holds: Deferred[] = [];
  const wait = async () => {
    if (!opts.hold) return;
    const d = deferred();
    holds.push(d);
    await d.promise;
  };
  const runner: BatchRunner<number, string> = {
    async many(items) {
      calls.push({ kind: 'many', items: [...items] });
      await wait();
      if (opts.manyAlwaysFails || items.some((i) => opts.failing?.has(i))) throw new Error('batch failed');
      return items.map((i) => `out-${i}`);
    },
    async one(item) {
      calls.push({ kind: 'one', items: [item] });
      await wait();
      if (opts.failing?.has(item)) throw new Error(`item ${item} failed`);
      return `out-${item}`;
    },
  };
  return { runner, calls, holds };
}

describe('db/batcher: group commit of concurrent calls', () => {
  it('a lone submit runs through `one` (never `many`) and resolves with its answer', async () => {
    const { runner, calls } = recordingRunner();
    const batcher = new Batcher(runner, 64, 2);
    expect(await batcher.submit(7)).to.equal('out-7');
    expect(calls).to.deep.equal([{ kind: 'one', items: [7] }]);
  });

  it('does not run before the end of the turn: submits of one turn are one `many` call, in order, each with its own answer', async () => {
    const { runner, calls } = recordingRunner();
    const batcher = new Batcher(runner, 64, 2);
    const items = [5, 3, 9, 1, 4, 8, 2];
    const promises = items.map((i) => batcher.submit(i));
    // Nothing ran synchronously or in the microtasks of this turn.
    await Promise.resolve();
    expect(calls).to.deep.equal([]);
    expect(await Promise.all(promises)).to.deep.equal(items.map((i) => `out-${i}`));
    expect(calls).to.deep.equal([{ kind: 'many', items }]);
  });

  it('with inFlight = 1, the items submitted while a call runs form the next batch (1 + 5 items: two calls)', async () => {
    const { runner, calls, holds } = recordingRunner({ hold: true });
    const batcher = new Batcher(runner, 64, 1);
    const first = batcher.submit(0);
    await turns();
    expect(calls).to.deep.equal([{ kind: 'one', items: [0] }]);
    const rest = [1, 2, 3, 4, 5].map((i) => batcher.submit(i));
    await turns();
    // The only slot is busy: the five wait, gathered.
    expect(calls, 'no second call while the slot is busy').to.have.length(1);
    holds[0]!.release();
    expect(await first).to.equal('out-0');
    await turns();
    expect(calls).to.deep.equal([
      { kind: 'one', items: [0] },
      { kind: 'many', items: [1, 2, 3, 4, 5] },
    ]);
    holds[1]!.release();
    expect(await Promise.all(rest)).to.deep.equal(['out-1', 'out-2', 'out-3', 'out-4', 'out-5']);
    expect(calls).to.have.length(2);
  });

  it('with inFlight = 2, a second batch starts while the first runs, and a third waits for a free slot', async () => {
    const { runner, calls, holds } = recordingRunner({ hold: true });
    const batcher = new Batcher(runner, 64, 2);
    const a = [batcher.submit(0), batcher.submit(1)];
    await turns();
    const b = [batcher.submit(2), batcher.submit(3)];
    await turns();
    const c = [batcher.submit(4), batcher.submit(5), batcher.submit(6)];
    await turns();
    expect(calls.map((x) => x.items)).to.deep.equal([
      [0, 1],
      [2, 3],
    ]);
    holds[1]!.release();
    expect(await Promise.all(b)).to.deep.equal(['out-2', 'out-3']);
    await turns();
    expect(calls.map((x) => x.items)).to.deep.equal([
      [0, 1],
      [2, 3],
      [4, 5, 6],
    ]);
    holds[0]!.release();
    holds[2]!.release();
    expect(await Promise.all([...a, ...c])).to.deep.equal(['out-0', 'out-1', 'out-4', 'out-5', 'out-6']);
  });

  it('splits at maxBatch: 7 items with maxBatch 3 are many(0,1,2), many(3,4,5) and one(6)', async () => {
    const { runner, calls } = recordingRunner();
    const batcher = new Batcher(runner, 3, 10);
    const items = [0, 1, 2, 3, 4, 5, 6];
    expect(await Promise.all(items.map((i) => batcher.submit(i)))).to.deep.equal(items.map((i) => `out-${i}`));
    expect(calls).to.deep.equal([
      { kind: 'many', items: [0, 1, 2] },
      { kind: 'many', items: [3, 4, 5] },
      { kind: 'one', items: [6] },
    ]);
  });

  it('when `many` rejects, every item of the batch runs alone through `one`; a failing item rejects only its own promise', async () => {
    const { runner, calls } = recordingRunner({ failing: new Set([3]) });
    const batcher = new Batcher(runner, 64, 2);
    const items = [1, 2, 3, 4, 5];
    const settled = await Promise.allSettled(items.map((i) => batcher.submit(i)));
    expect(settled.map((s) => (s.status === 'fulfilled' ? s.value : `rejected: ${(s.reason as Error).message}`))).to.deep.equal(['out-1', 'out-2', 'rejected: item 3 failed', 'out-4', 'out-5']);
    expect(calls[0]).to.deep.equal({ kind: 'many', items });
    expect(calls.slice(1).map((c) => c.kind)).to.deep.equal(['one', 'one', 'one', 'one', 'one']);
    expect(calls.slice(1).flatMap((c) => c.items)).to.have.members(items);
  });

  it('when `many` rejects and every `one` succeeds, every item resolves', async () => {
    const { runner, calls } = recordingRunner({ manyAlwaysFails: true });
    const batcher = new Batcher(runner, 64, 2);
    expect(await Promise.all([10, 11, 12].map((i) => batcher.submit(i)))).to.deep.equal(['out-10', 'out-11', 'out-12']);
    expect(calls.map((c) => c.kind)).to.deep.equal(['many', 'one', 'one', 'one']);
  });

  it('a failing lone item rejects, and the batcher goes on serving later submits', async () => {
    const { runner } = recordingRunner({ failing: new Set([1]) });
    const batcher = new Batcher(runner, 64, 1);
    let error: unknown;
    await batcher.submit(1).catch((err: unknown) => {
      error = err;
    });
    expect((error as Error | undefined)?.message).to.equal('item 1 failed');
    expect(await batcher.submit(2)).to.equal('out-2');
    expect(await Promise.all([batcher.submit(3), batcher.submit(4)])).to.deep.equal(['out-3', 'out-4']);
  });

  it(`property: no item is lost or answered twice, batches respect maxBatch and inFlight, answers match items (seed ${SEED}, ${RUNS} runs)`, async () => {
    const scenario = fc.record({
      maxBatch: fc.integer({ min: 1, max: 8 }),
      inFlight: fc.integer({ min: 1, max: 3 }),
      // Items are submitted in waves; between waves the event loop turns 0 to 3 times.
      waves: fc.array(fc.record({ size: fc.integer({ min: 0, max: 12 }), pause: fc.integer({ min: 0, max: 3 }) }), { minLength: 1, maxLength: 6 }),
      failingRatio: fc.integer({ min: 0, max: 3 }),
      // How many event-loop turns each runner call takes (0: answers in microtasks).
      delays: fc.array(fc.integer({ min: 0, max: 3 }), { minLength: 1, maxLength: 10 }),
    });
    await fc.assert(
      fc.asyncProperty(scenario, async ({ maxBatch, inFlight, waves, failingRatio, delays }) => {
        const total = waves.reduce((n, w) => n + w.size, 0);
        const failing = new Set(Array.from({ length: total }, (_, i) => i).filter((i) => failingRatio > 0 && i % (failingRatio + 2) === 1));
        const calls: Call[] = [];
        let running = 0;
        let maxRunning = 0;
        let callNo = 0;
        const answered = new Map<number, number>();
        const batched = new Set<number>();
        const take = async <T>(kind: 'one' | 'many', items: number[], body: () => T): Promise<T> => {
          calls.push({ kind, items: [...items] });
          // A slot is a batch: a `many`, or a lone `one` (not the retry of an item of a failed `many`, which runs in its batch's slot).
          const slot = kind === 'many' || !batched.has(items[0]!);
          for (const i of items) batched.add(i);
          if (slot) {
            running += 1;
            maxRunning = Math.max(maxRunning, running);
          }
          try {
            await turns(delays[callNo++ % delays.length]!);
            return body();
          } finally {
            if (slot) running -= 1;
          }
        };
        const runner: BatchRunner<number, string> = {
          many: (items) =>
            take('many', items, () => {
              if (items.some((i) => failing.has(i))) throw new Error('batch failed');
              return items.map((i) => `out-${i}`);
            }),
          one: (item) =>
            take('one', [item], () => {
              if (failing.has(item)) throw new Error(`item ${item} failed`);
              return `out-${item}`;
            }),
        };
        const batcher = new Batcher(runner, maxBatch, inFlight);
        const outcomes: Promise<void>[] = [];
        let next = 0;
        for (const wave of waves) {
          for (let k = 0; k < wave.size; k++) {
            const item = next++;
            outcomes.push(
              batcher.submit(item).then(
                (out) => {
                  answered.set(item, (answered.get(item) ?? 0) + 1);
                  expect(out, `answer of ${item}`).to.equal(`out-${item}`);
                  expect(failing.has(item), `${item} is a failing item yet resolved`).to.equal(false);
                },
                (err: unknown) => {
                  answered.set(item, (answered.get(item) ?? 0) + 1);
                  expect((err as Error).message, `rejection of ${item}`).to.equal(`item ${item} failed`);
                  expect(failing.has(item), `${item} rejected though it is not failing`).to.equal(true);
                },
              ),
            );
          }
          await turns(wave.pause);
        }
        await Promise.all(outcomes);
        expect(answered.size, 'every item answered').to.equal(total);
        for (const [item, n] of answered) expect(n, `item ${item} answered once`).to.equal(1);
        // Batches: at most maxBatch items, a lone item through `one`, at most inFlight at a time.
        for (const c of calls) {
          expect(c.items.length).to.be.at.most(maxBatch);
          if (c.kind === 'many') expect(c.items.length, 'many holds two or more').to.be.at.least(2);
        }
        expect(maxRunning).to.be.at.most(inFlight);
        // Each item was in exactly one batch (a `many`, or a first lone `one`), batches in submission order.
        const batches = calls.filter((c, i) => c.kind === 'many' || !calls.slice(0, i).some((p) => p.kind === 'many' && p.items.includes(c.items[0]!)));
        expect(batches.flatMap((c) => c.items)).to.deep.equal(Array.from({ length: total }, (_, i) => i));
        // A `one` after a `many` only for the items of a `many` that failed, each once.
        const failedMany = calls.filter((c) => c.kind === 'many' && c.items.some((i) => failing.has(i))).flatMap((c) => c.items);
        const retried = calls.filter((c) => !batches.includes(c)).flatMap((c) => c.items);
        expect([...retried].sort((x, y) => x - y)).to.deep.equal([...failedMany].sort((x, y) => x - y));
      }),
      options,
    );
  });
});
