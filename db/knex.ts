import { createHash } from 'node:crypto';
import knexFactory, { type Knex } from 'knex';
import pg from 'pg';
import { migrationSource } from './migrations/index.js';

// int8 columns hold minor units and counts: far below 2^53 by the amount limits, so read them as
// numbers, and fail loudly rather than round if one ever is not.
pg.types.setTypeParser(pg.types.builtins.INT8, (text) => {
  const value = Number(text);
  if (!Number.isSafeInteger(value)) throw new RangeError(`int8 out of safe range: ${text}`);
  return value;
});

// DATE columns (settlement days) stay 'YYYY-MM-DD' strings: a JS Date would shift them by the process time zone.
pg.types.setTypeParser(pg.types.builtins.DATE, (text) => text);

export type Db = Knex | Knex.Transaction;

/**
 * A list's cursor time at the microseconds Postgres keeps (a JS Date keeps milliseconds, and rows
 * a few microseconds apart would fall between pages).
 */
export const cursorTime = (db: Db, column: string) => db.raw(`to_char(?? AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS cursor_t`, [column]);

/** One SQL statement, built but not yet run (what knex's toSQL() gives). */
export type Statement = Pick<Knex.Sql, 'sql' | 'bindings'>;

/**
 * Runs statements in one round trip: `main` answers, the others (plain statements, none beginning
 * with WITH) ride along as data-modifying CTEs before main's own. They share one snapshot, so none
 * sees the others' rows and no two may change the same row; constraints are checked once all of
 * them are done.
 */
export async function runTogether<T = Record<string, unknown>>(db: Db, main: Statement, given: readonly Statement[] = []): Promise<T[]> {
  const { sql, bindings } = together(main, given);
  const { rows } = await prepared(db.raw<{ rows: T[] }>(sql, bindings));
  return rows;
}

/** The one statement runTogether runs. */
export function together(main: Statement, given: readonly Statement[] = []): Statement {
  const riders = mergeInserts(given);
  const ridersSql = riders.map((s, i) => `w${i} AS (${s.sql})`).join(', ');
  const sql = !riders.length ? main.sql : /^WITH\s/i.test(main.sql) ? `WITH ${ridersSql}, ${main.sql.slice(5)}` : `WITH ${ridersSql} ${main.sql}`;
  return { sql, bindings: [...riders.flatMap((s) => s.bindings), ...main.bindings] };
}

/**
 * Single-row INSERTs of one table and one column list (as knex builds them: no RETURNING, no ON
 * CONFLICT) as one multi-row INSERT, at the place of the first, rows in the order given; every
 * other statement as it is. In one snapshot this writes the same rows, and Postgres then sets up
 * the table, its indexes, CHECK constraints and foreign-key triggers once per statement instead of
 * once per row: a worker's batch writes a transaction, ledger, outbox and audit row per operation.
 */
export function mergeInserts(statements: readonly Statement[]): Statement[] {
  const merged: Statement[] = [];
  const byTarget = new Map<string, { at: number; rows: string[]; bindings: unknown[] }>();
  for (const s of statements) {
    const insert = singleRowInsert(s.sql);
    const group = insert && byTarget.get(insert.target);
    if (!insert) merged.push(s);
    else if (group) {
      group.rows.push(insert.row);
      group.bindings.push(...s.bindings);
    } else {
      byTarget.set(insert.target, { at: merged.length, rows: [insert.row], bindings: [...s.bindings] });
      merged.push(s);
    }
  }
  for (const [target, { at, rows, bindings }] of byTarget) {
    if (rows.length > 1) merged[at] = { sql: `${target}${rows.join(', ')}`, bindings: bindings as Statement['bindings'] };
  }
  return merged;
}

/** `insert into "t" (cols) values ` and the row's `(…)` of a one-row INSERT whose row ends the statement; undefined for any other. */
function singleRowInsert(sql: string): { target: string; row: string } | undefined {
  const head = /^insert into "[^"]+" \([^()]*\) values /.exec(sql);
  if (!head || sql[head[0].length] !== '(') return undefined;
  const row = sql.slice(head[0].length);
  return closingParen(row) === row.length - 1 ? { target: head[0], row } : undefined;
}

/** Where the parenthesis opening `text` closes, skipping quoted SQL strings; -1 when it does not. */
function closingParen(text: string): number {
  let depth = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === "'") {
      i = text.indexOf("'", i + 1);
      while (i !== -1 && text[i + 1] === "'") i = text.indexOf("'", i + 2);
      if (i === -1) return -1;
    } else if (c === '(') depth++;
    else if (c === ')' && --depth === 0) return i;
  }
  return -1;
}

/** How a worker's operation reads: its rows, in a round trip that may also carry earlier writes (operations/runner.ts). */
export type Read = <T>(query: Statement) => Promise<T[]>;

/**
 * Runs a hot query as a named prepared statement, named after its text, so Postgres plans it
 * once per connection instead of on every call (planning was a third of the money path's
 * statement time). Only for queries whose text comes in a few shapes: each distinct text stays
 * prepared on every pooled connection.
 */
export function prepared<Q extends Knex.ChainableInterface & { toSQL(): { sql: string } }>(query: Q): Q {
  return query.options({ name: preparedName(query.toSQL().sql) });
}

/** The name `prepared()` gives a query of this text (as knex compiled it). */
export const preparedName = (sql: string) => `mps_${createHash('sha1').update(sql).digest('hex')}`;

export interface PageRequest {
  limit: number;
  cursor?: { t: string; id: string };
}

/**
 * Narrows a newest-first list to one value of `column` that leads an index (column, created_at
 * DESC, id DESC), so that the list reads that index. Call it before newestFirst: it orders by the
 * column first, and with `= ANY(ARRAY[value])` rather than `=` the planner cannot drop that as a
 * constant, so only that index gives the order. With a plain `=` it may walk the table-wide newest
 * index and filter, which is quick only while the value is spread evenly over time: on the scale
 * data, where the newest 1,000,000 transactions are the preload's recharges, the payments' page
 * took over 10 s that way (1 ms through the index).
 */
export function oneValueOf<Q extends Knex.QueryBuilder>(query: Q, column: string, value: string): Q {
  query.whereRaw('?? = ANY(?)', [column, [value]]).orderBy(column);
  return query;
}

/**
 * Newest first, keyset-paginated on (created_at, id) of `table` (a name or alias): selects the
 * cursor time, orders, fetches limit + 1 to know whether more exist, and starts after the cursor.
 * `idType` is the SQL type of the id column (operations have text ids, `op_…`).
 */
export function newestFirst<Q extends Knex.QueryBuilder>(db: Db, query: Q, table: string, page: PageRequest, idType: 'uuid' | 'text' = 'uuid'): Q {
  query
    .select(cursorTime(db, `${table}.created_at`))
    .orderBy([
      { column: `${table}.created_at`, order: 'desc' },
      { column: `${table}.id`, order: 'desc' },
    ])
    .limit(page.limit + 1);
  if (page.cursor) query.whereRaw(`(??, ??) < (?::timestamptz, ?::${idType})`, [`${table}.created_at`, `${table}.id`, page.cursor.t, page.cursor.id]);
  return query;
}

export interface KnexOptions {
  /** Bounds every query; 0 (the default) means no limit (migrations, bulk loads). */
  queryTimeoutMs?: number;
  /**
   * Behind PgBouncer in transaction mode: no startup parameter but application_name (PgBouncer
   * 1.18 refuses the rest), so the server-side timeout must come from the role
   * (`ALTER ROLE … SET statement_timeout`), which every server connection PgBouncer opens applies.
   */
  pgbouncer?: boolean;
  /** False drops the names of `prepared()` queries: PgBouncer < 1.21 hands a name to the wrong server connection. */
  preparedStatements?: boolean;
}

/**
 * node-postgres writes a statement without waiting for the one before it to be answered (answers
 * still come in order), so a transaction's BEGIN and COMMIT can share round trips with its
 * statements (pipelined-transaction.ts). knex's types do not know the option.
 */
const PIPELINE = { pipeline: true };

/**
 * `queryTimeoutMs` bounds every query on both sides (statement_timeout in Postgres, query_timeout
 * in the client) and TCP keepalive is on, so a silent, half-open connection fails a request or a
 * job instead of holding it, and its card partition, forever.
 */
export function createKnex(databaseUrl: string, poolMax: number, onError: (err: Error) => void, options: KnexOptions = {}): Knex {
  const { queryTimeoutMs = 0, pgbouncer = false, preparedStatements = true } = options;
  const knex = knexFactory({
    client: 'pg',
    connection: {
      connectionString: databaseUrl,
      application_name: 'mps',
      keepAlive: true,
      connectionTimeoutMillis: 5000,
      ...PIPELINE,
      ...(queryTimeoutMs ? { query_timeout: queryTimeoutMs + 1000 } : {}),
      ...(queryTimeoutMs && !pgbouncer ? { statement_timeout: queryTimeoutMs } : {}),
    },
    acquireConnectionTimeout: 10_000,
    pool: {
      min: 0,
      max: poolMax,
      // Every pooled client gets an error listener: an idle client whose server went away must not crash the process.
      afterCreate: (conn: pg.Client, done: (err: Error | null, conn: pg.Client) => void) => {
        conn.on('error', onError);
        wrapQuery(conn, preparedStatements);
        done(null, conn);
      },
    },
    migrations: { migrationSource, tableName: 'knex_migrations' },
  });
  return knex;
}

/**
 * After a client-side query timeout node-postgres keeps the connection busy with the lost query,
 * and knex would hand it out again. Ending it makes knex drop it from the pool (a silent,
 * half-open connection then costs one query, not every query after it). Without prepared
 * statements the query's name is dropped here, the one place every query passes, so the queries
 * keep their `prepared()` marks for the deployments that have them.
 */
function wrapQuery(conn: pg.Client, preparedStatements: boolean): void {
  const query = conn.query.bind(conn) as (...args: unknown[]) => unknown;
  (conn as unknown as { query: (...args: unknown[]) => unknown }).query = (...args: unknown[]) => {
    const [config] = args;
    if (!preparedStatements && config && typeof config === 'object' && 'name' in config) {
      const { name: _unnamed, ...unnamed } = config as { name?: string };
      args[0] = unnamed;
    }
    const last = args.length - 1;
    const callback = args[last];
    if (typeof callback === 'function') {
      args[last] = (err: Error | null, ...rest: unknown[]) => {
        if (err?.message === 'Query read timeout') conn.end().catch(() => undefined);
        return (callback as (...a: unknown[]) => unknown)(err, ...rest);
      };
    }
    return query(...args);
  };
}

export async function migrateLatest(knex: Knex): Promise<string[]> {
  const [, applied] = (await knex.migrate.latest()) as [number, string[]];
  return applied;
}

/** True when every migration this build knows about has been applied. */
export async function migrationsCurrent(knex: Knex): Promise<boolean> {
  const [, pending] = (await knex.migrate.list()) as [unknown[], unknown[]];
  return pending.length === 0;
}

/** Postgres error codes worth retrying the whole transaction for: deadlock, serialization failure. */
export function isTransientDbError(err: unknown): boolean {
  const code = (err as { code?: string } | null)?.code;
  return code === '40P01' || code === '40001' || code === '57P01' || code === '08006' || code === '08003' || code === 'ECONNREFUSED' || code === 'ECONNRESET';
}
