import type { Knex } from 'knex';
import PgTransaction from 'knex/lib/dialects/postgres/execution/pg-transaction.js';
import type pg from 'pg';
import { preparedName, type Statement } from './knex.js';

/** A pooled client as createKnex makes it (pipeline mode), with the socket pg writes to. */
type PipelinedClient = pg.Client & { connection: { stream: NodeJS.WritableStream & { cork(): void; uncork(): void; destroy(): void } } };

/** Clients whose transaction committed along with its last statement: knex must not send COMMIT again. */
const committedAlong = new WeakSet<object>();

/**
 * A knex transaction whose BEGIN is written with its first statement and answered before it (the
 * pool's clients are in pipeline mode), one round trip for both. Should BEGIN fail, the client is
 * destroyed, so nothing written after it runs but the first statement, and that on its own: the
 * first statement must therefore only read or lock (every caller's does).
 */
class PipelinedTransaction extends PgTransaction {
  override begin(conn: PipelinedClient): Promise<void> {
    // A mark left by a transaction that never reached knex's commit must not skip this one's COMMIT.
    committedAlong.delete(conn);
    const socket = conn.connection.stream;
    // Held until the end of this turn of the event loop, which knex spends reaching the first statement: one write for both.
    socket.cork();
    setImmediate(() => socket.uncork());
    conn.query('BEGIN').catch(() => socket.destroy());
    return Promise.resolve();
  }

  override commit(conn: PipelinedClient, value: unknown): Promise<unknown> {
    if (!committedAlong.delete(conn)) return super.commit(conn, value);
    this._completed = true;
    this._resolver(value);
    return Promise.resolve();
  }
}

/**
 * Runs `work` in a transaction of two round trips fewer: BEGIN goes with the first statement
 * `work` sends, and COMMIT with the statement it returns as `last`, which runs after everything
 * `work` sent. Resolves with `work`'s value and the rows of `last`; rejects, having committed
 * nothing, if any statement or the COMMIT failed. Without a `last`, knex commits as usual.
 */
export async function pipelinedTransaction<T, Row = Record<string, unknown>>(db: Knex, work: (trx: Knex.Transaction) => Promise<{ value: T; last?: Statement }>): Promise<{ value: T; rows: Row[] }> {
  const transaction = new PipelinedTransaction(db.client, async (trx: Knex.Transaction) => {
    const { value, last } = await work(trx);
    return { value, rows: last ? await runAndCommit(trx, last) : [] };
  });
  return (await transaction) as { value: T; rows: Row[] };
}

/** `last` and COMMIT in one write, answered in order. A failed statement turns the COMMIT into a rollback: its error is thrown. */
async function runAndCommit(trx: Knex.Transaction, last: Statement): Promise<Record<string, unknown>[]> {
  const conn = (await trx.client.acquireConnection()) as PipelinedClient;
  const compiled = trx.raw(last.sql, last.bindings).toSQL();
  const { sql, bindings } = compiled.toNative();
  const socket = conn.connection.stream;
  socket.cork();
  const ran = conn.query({ name: preparedName(compiled.sql), text: sql, values: bindings as unknown[] });
  const committed = conn.query('COMMIT');
  socket.uncork();
  const [result, commit] = await Promise.allSettled([ran, committed]);
  if (result.status === 'rejected') throw result.reason;
  if (commit.status === 'rejected') throw commit.reason;
  if (commit.value.command !== 'COMMIT') throw new Error(`transaction ended with ${commit.value.command}, not COMMIT`);
  committedAlong.add(conn);
  return result.value.rows;
}
