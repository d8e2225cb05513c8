import type { Knex } from 'knex';
import { groupBy } from '../db/batcher.js';
import { runTogether, together, type Read, type Statement } from '../db/knex.js';

/**
 * The writes of the operations decided so far, held back to ride along with the next read: one
 * round trip per read instead of two. That read runs on a snapshot without them, so they go
 * first, on their own, when the read is for one of their cards.
 */
export class HeldWrites {
  private statements: Statement[] = [];
  private readonly cards = new Set<string>();

  constructor(private readonly trx: Knex.Transaction) {}

  /** Runs `reads` (main statements) in order, the held writes riding with the first: flushed first if one of `cards` has held writes. */
  async read(cards: readonly (string | null)[], reads: readonly Statement[]): Promise<Record<string, unknown>[][]> {
    if (cards.some((card) => card !== null && this.cards.has(card))) await this.flush();
    const answers: Record<string, unknown>[][] = [];
    for (const query of reads) answers.push(await runTogether(this.trx, query, this.take()));
    return answers;
  }

  async hold(cardId: string | null, statements: Statement[]): Promise<void> {
    if (cardId && this.cards.has(cardId)) await this.flush();
    this.statements.push(...statements);
    if (cardId) this.cards.add(cardId);
  }

  /** Sends what is held, and `also` in the same round trip. */
  async flush(also: Statement[] = []): Promise<void> {
    const last = this.last(also);
    if (last) await runTogether(this.trx, last);
  }

  /** What is held, and `also`, as one statement for the caller to send (with its COMMIT); undefined when there is nothing. */
  last(also: Statement[] = []): Statement | undefined {
    const [main, ...riders] = [...this.take(), ...also];
    return main && together(main, riders);
  }

  private take(): Statement[] {
    const taken = this.statements;
    this.statements = [];
    this.cards.clear();
    return taken;
  }
}

/**
 * The operations of a batch in waves: each card at most once per wave, and a card's operations in
 * their order across waves (a wave's reads run on one snapshot, so a card's next operation must
 * read after the writes of the one before). Operations without a card read no card: wave one.
 */
export function wavesOf<T extends { card_id: string | null }>(ops: readonly T[]): T[][] {
  const waves: T[][] = [];
  const lastWave = new Map<string, number>();
  for (const op of ops) {
    const wave = op.card_id === null ? 0 : (lastWave.get(op.card_id) ?? -1) + 1;
    if (op.card_id !== null) lastWave.set(op.card_id, wave);
    (waves[wave] ??= []).push(op);
  }
  return waves;
}

/** What a wave reads through: HeldWrites (its `read`), or a stand-in in tests. */
export type WaveReader = Pick<HeldWrites, 'read'>;

interface PendingRead {
  cardId: string | null;
  query: Statement;
  resolve(rows: Record<string, unknown>[]): void;
  reject(err: unknown): void;
}

/**
 * Decides a wave's operations (distinct cards) at once, each with its own `read`: once every one
 * still deciding waits on a read, those reads go together, the held writes riding with them, and
 * reads of one text (a kind's lock of its card and rows) as one UNION ALL statement. A wave of
 * charges on N cards then reads in one round trip instead of N. Each decision sees only its own
 * rows, as it would alone; `decide` must not await anything but its reads for long.
 */
export async function decideWave<Op extends { card_id: string | null }, T>(held: WaveReader, wave: readonly Op[], decide: (op: Op, read: Read) => Promise<T>): Promise<T[]> {
  let pending: PendingRead[] = [];
  let deciding = wave.length;
  const sendIfAllWait = () => {
    if (!pending.length || pending.length < deciding) return;
    const reads = pending;
    pending = [];
    sendTogether(held, reads).catch((err: unknown) => reads.forEach((r) => r.reject(err)));
  };
  return Promise.all(
    wave.map(async (op) => {
      const read: Read = <R>(query: Statement) =>
        new Promise<R[]>((resolve, reject) => {
          pending.push({ cardId: op.card_id, query, resolve: resolve as PendingRead['resolve'], reject });
          sendIfAllWait();
        });
      try {
        return await decide(op, read);
      } finally {
        deciding--;
        sendIfAllWait();
      }
    }),
  );
}

/** Sends the reads of a wave: one statement per text, the rows handed back to each. */
async function sendTogether(held: WaveReader, reads: PendingRead[]): Promise<void> {
  const groups = [...groupBy(reads, (r) => r.query.sql).values()];
  const answers = await held.read(
    reads.map((r) => r.cardId),
    groups.map((group) => (group.length === 1 ? group[0]!.query : unionOf(group.map((r) => r.query)))),
  );
  groups.forEach((group, g) => {
    if (group.length === 1) return group[0]!.resolve(answers[g]!);
    const rows: Record<string, unknown>[][] = group.map(() => []);
    for (const { mps_read, ...row } of answers[g]!) rows[mps_read as number]!.push(row);
    group.forEach((r, i) => r.resolve(rows[i]!));
  });
}

/** Statements of one text as one: each one's rows tagged with its place (its own order kept within it). */
function unionOf(queries: Statement[]): Statement {
  return {
    sql: queries.map((q, i) => `(SELECT ${i} AS mps_read, r.* FROM (${q.sql}) r)`).join(' UNION ALL '),
    bindings: queries.flatMap((q) => q.bindings),
  };
}
