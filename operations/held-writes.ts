import type { Knex } from 'knex';
import { runTogether, type Read, type Statement } from '../db/knex.js';

/**
 * The writes of the operations decided so far, held back to ride along with the next operation's
 * first read: one round trip per operation instead of two. That read runs on a snapshot without
 * them, so they go first, on their own, when the next operation is on one of their cards.
 */
export class HeldWrites {
  private statements: Statement[] = [];
  private readonly cards = new Set<string>();

  constructor(private readonly trx: Knex.Transaction) {}

  reader(cardId: string | null): Read {
    return async <T>(query: Statement) => {
      if (cardId && this.cards.has(cardId)) await this.flush();
      return runTogether<T>(this.trx, query, this.take());
    };
  }

  async hold(cardId: string | null, statements: Statement[]): Promise<void> {
    if (cardId && this.cards.has(cardId)) await this.flush();
    this.statements.push(...statements);
    if (cardId) this.cards.add(cardId);
  }

  /** Sends what is held, and `also` in the same round trip. */
  async flush(also: Statement[] = []): Promise<void> {
    const [main, ...riders] = [...this.take(), ...also];
    if (main) await runTogether(this.trx, main, riders);
  }

  private take(): Statement[] {
    const taken = this.statements;
    this.statements = [];
    this.cards.clear();
    return taken;
  }
}
