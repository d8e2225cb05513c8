/** How a Batcher runs what it gathered: `many` for two or more items (one answer per item, in order), `one` for a lone item. */
export interface BatchRunner<In, Out> {
  many(items: In[]): Promise<Out[]>;
  one(item: In): Promise<Out>;
}

interface Waiting<In, Out> {
  item: In;
  resolve(out: Out): void;
  reject(err: unknown): void;
}

/**
 * Group commit for one process: concurrent calls share one round trip. A call joins the batch
 * being gathered, which starts at the end of the current turn of the event loop when one of the
 * `inFlight` slots is free, else as soon as one is. So a lone call waits for nothing and, the busier
 * the process, the more calls share each statement and commit. When a batch fails, each of its
 * items runs alone, so one bad item fails only its own call.
 */
export class Batcher<In, Out> {
  private gathering: Waiting<In, Out>[] = [];
  private running = 0;
  private scheduled = false;

  constructor(
    private readonly runner: BatchRunner<In, Out>,
    private readonly maxBatch: number,
    private readonly inFlight: number,
  ) {}

  submit(item: In): Promise<Out> {
    return new Promise<Out>((resolve, reject) => {
      this.gathering.push({ item, resolve, reject });
      this.schedule();
    });
  }

  private schedule(): void {
    if (this.scheduled || this.running >= this.inFlight || !this.gathering.length) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      this.start();
    });
  }

  private start(): void {
    while (this.running < this.inFlight && this.gathering.length) {
      const batch = this.gathering.splice(0, this.maxBatch);
      this.running += 1;
      void this.run(batch).finally(() => {
        this.running -= 1;
        this.schedule();
      });
    }
  }

  private async run(batch: Waiting<In, Out>[]): Promise<void> {
    if (batch.length > 1) {
      try {
        const outs = await this.runner.many(batch.map((w) => w.item));
        if (outs.length !== batch.length) throw new Error(`a batch of ${batch.length} got ${outs.length} answers`);
        batch.forEach((w, i) => w.resolve(outs[i]!));
        return;
      } catch {
        // One item's trouble (a constraint, say) fails the whole statement: each runs alone below and gets its own answer.
      }
    }
    await Promise.all(batch.map((w) => this.runner.one(w.item).then(w.resolve, w.reject)));
  }
}

/** `make(owner)` once per owner (a pool, a Redis client, a set of queues): the process's one Batcher for it. */
export function perOwner<Owner extends object, T>(make: (owner: Owner) => T): (owner: Owner) => T {
  const made = new WeakMap<Owner, T>();
  return (owner) => {
    let value = made.get(owner);
    if (value === undefined) {
      value = make(owner);
      made.set(owner, value);
    }
    return value;
  };
}

/** The items of a batch by `keyOf`, keys in the order first seen, each group in the items' order. */
export function groupBy<T, K>(items: readonly T[], keyOf: (item: T) => K): Map<K, T[]> {
  const groups = new Map<K, T[]>();
  for (const item of items) {
    const key = keyOf(item);
    const group = groups.get(key);
    if (group) group.push(item);
    else groups.set(key, [item]);
  }
  return groups;
}
