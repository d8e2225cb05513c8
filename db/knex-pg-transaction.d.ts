// knex's Postgres transaction class, which db/pipelined-transaction.ts extends (knex ships no types for it).
declare module 'knex/lib/dialects/postgres/execution/pg-transaction.js' {
  import type { Knex } from 'knex';

  export default class PgTransaction implements PromiseLike<unknown> {
    constructor(client: Knex.Client, container: (trx: Knex.Transaction) => Promise<unknown>, config?: Knex.TransactionConfig);
    protected _completed: boolean;
    protected _resolver(value: unknown): void;
    begin(conn: unknown): Promise<unknown>;
    commit(conn: unknown, value: unknown): Promise<unknown>;
    then<A = unknown, B = never>(onResolve?: ((value: unknown) => A | PromiseLike<A>) | null, onReject?: ((reason: unknown) => B | PromiseLike<B>) | null): PromiseLike<A | B>;
  }
}
