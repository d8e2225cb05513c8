import { randomBytes } from 'node:crypto';
import { expect } from 'chai';
import type { Knex } from 'knex';
import { createKnex } from '../../db/knex.js';
import { pipelinedTransaction } from '../../db/pipelined-transaction.js';
import { testEnv } from '../helpers/env.js';

/**
 * db/pipelined-transaction.ts against the run's Postgres: BEGIN shares a round trip with the first
 * statement and COMMIT with the last, and a failure anywhere, the COMMIT's own included, commits
 * nothing and rejects.
 */

type Socket = NodeJS.WritableStream & { _writev?: (...args: unknown[]) => unknown; _write: (...args: unknown[]) => unknown };
type Client = { connection: { stream: Socket; on(event: string, fn: () => void): void } };

/** What the one pooled client writes and hears, in order: each message as it is handed to the socket, each socket write, each answer. */
async function spyOnTheClient(db: Knex): Promise<string[]> {
  const log: string[] = [];
  const conn = (await db.client.acquireConnection()) as Client;
  const socket = conn.connection.stream;
  const write = socket.write.bind(socket) as (chunk: Buffer, ...rest: unknown[]) => boolean;
  (socket as unknown as { write: typeof write }).write = (chunk: Buffer, ...rest: unknown[]) => {
    log.push(messageOf(chunk));
    return write(chunk, ...rest);
  };
  for (const method of ['_write', '_writev'] as const) {
    const inner = socket[method];
    if (inner) socket[method] = (...args: unknown[]) => (log.push('socket write'), inner.apply(socket, args));
  }
  conn.connection.on('readyForQuery', () => log.push('answered'));
  await db.client.releaseConnection(conn);
  return log;
}

/** The error `promise` rejects with; fails the test if it resolves. */
async function rejectionOf(promise: Promise<unknown>): Promise<Error & { code?: string }> {
  const outcome = await promise.then(
    () => undefined,
    (err: Error) => err,
  );
  expect(outcome, 'rejected').to.be.instanceOf(Error);
  return outcome!;
}

/** A protocol message as the log shows it: BEGIN, COMMIT and ROLLBACK by their text; a statement by its Bind (or its simple query, without bindings). */
function messageOf(chunk: Buffer): string {
  const type = String.fromCharCode(chunk[0]!);
  const text = type === 'Q' ? chunk.subarray(5, chunk.indexOf(0, 5)).toString() : '';
  if (/^(BEGIN|COMMIT|ROLLBACK)\b/.test(text)) return `query ${text}`;
  return type === 'B' || type === 'Q' ? 'statement' : type;
}

describe('pipelined transactions', function () {
  let db: Knex;
  let log: string[];
  const table = `pipelined_${randomBytes(4).toString('hex')}`;
  const rowsOf = async () => (await db(table).orderBy('id').pluck('id')) as number[];

  before(async () => {
    db = createKnex(testEnv.databaseUrl, 1, () => undefined);
    // Deferred: a duplicate fails at COMMIT, not at its INSERT.
    await db.raw(`CREATE TABLE ${table} (id int, CONSTRAINT ${table}_once UNIQUE (id) DEFERRABLE INITIALLY DEFERRED)`);
    log = await spyOnTheClient(db);
  });
  beforeEach(async () => {
    await db(table).del();
    log.length = 0;
  });
  after(async () => {
    await db.raw(`DROP TABLE ${table}`);
    await db.destroy();
  });

  const insert = (id: number) => ({ sql: `INSERT INTO ${table} (id) VALUES (?) RETURNING id`, bindings: [id] });

  it('writes BEGIN with the first statement and COMMIT with the last, each pair in one socket write, and commits', async () => {
    const { value, rows } = await pipelinedTransaction(db, async (trx) => {
      const [first] = (await trx.raw(`SELECT 41 AS n FOR UPDATE`)).rows as { n: number }[];
      return { value: first!.n, last: insert(first!.n + 1) };
    });
    const sent = log.filter((entry) => entry !== 'P' && entry !== 'D' && entry !== 'E' && entry !== 'S');
    expect(value).to.equal(41);
    expect(rows).to.deep.equal([{ id: 42 }]);
    expect(await rowsOf()).to.deep.equal([42]);
    expect(sent).to.deep.equal(['query BEGIN', 'statement', 'socket write', 'answered', 'answered', 'statement', 'query COMMIT', 'socket write', 'answered', 'answered']);
  });

  it('knex alone waits for each answer before the next statement (what the first test tells apart)', async () => {
    await db.transaction(async (trx) => {
      await trx.raw(`SELECT 1 FOR UPDATE`);
      await trx.raw(insert(7).sql, insert(7).bindings);
    });
    const sent = log.filter((entry) => entry === 'statement' || entry === 'answered' || entry.startsWith('query'));
    expect(sent).to.deep.equal(['query BEGIN;', 'answered', 'statement', 'answered', 'statement', 'answered', 'query COMMIT;', 'answered']);
  });

  it('a failing last statement commits nothing of the transaction and rejects with its error; the client serves on', async () => {
    const failing = pipelinedTransaction(db, async (trx) => {
      await trx.raw(insert(1).sql, insert(1).bindings);
      return { value: undefined, last: { sql: `INSERT INTO ${table} (id) VALUES (?::int)`, bindings: ['not a number'] } };
    });
    expect((await rejectionOf(failing)).message).to.match(/invalid input syntax for type integer/);
    expect(await rowsOf()).to.deep.equal([]);
    await pipelinedTransaction(db, async () => ({ value: undefined, last: insert(2) }));
    expect(await rowsOf()).to.deep.equal([2]);
  });

  it('a COMMIT that fails (a deferred constraint) commits nothing and rejects, and knex sends no second COMMIT', async () => {
    const failing = pipelinedTransaction(db, async (trx) => {
      await trx.raw(insert(5).sql, insert(5).bindings);
      return { value: undefined, last: insert(5) };
    });
    expect(await rejectionOf(failing)).to.have.property('code', '23505');
    expect(await rowsOf()).to.deep.equal([]);
    expect(log.filter((entry) => entry.startsWith('query'))).to.deep.equal(['query BEGIN', 'query COMMIT', 'query ROLLBACK']);
  });

  it('work that throws rolls back; work without a last statement is committed by knex', async () => {
    const thrown = pipelinedTransaction(db, async (trx) => {
      await trx.raw(insert(3).sql, insert(3).bindings);
      throw new Error('refused');
    });
    expect((await rejectionOf(thrown)).message).to.equal('refused');
    expect(await rowsOf()).to.deep.equal([]);
    const { value, rows } = await pipelinedTransaction(db, async (trx) => {
      await trx.raw(insert(4).sql, insert(4).bindings);
      return { value: 'kept' };
    });
    expect([value, rows]).to.deep.equal(['kept', []]);
    expect(await rowsOf()).to.deep.equal([4]);
  });
});
