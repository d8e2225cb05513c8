import { expect } from 'chai';
import knexFactory from 'knex';
import { mergeInserts, type Statement } from '../../db/knex.js';

/** knex without a connection: it builds the SQL text as the engine's statements are built. */
const knex = knexFactory({ client: 'pg' });
const sql = (q: { toSQL(): Statement }): Statement => {
  const { sql: text, bindings } = q.toSQL();
  return { sql: text, bindings };
};

describe('unit: one INSERT per table in a round trip (db/knex.ts mergeInserts)', () => {
  it('makes the one-row INSERTs of one table and column list one INSERT, at the first one’s place, rows and bindings in order', () => {
    const merged = mergeInserts([
      sql(knex('operations').where({ id: 'op-1' }).update({ status: 'succeeded' })),
      sql(knex('events').insert({ id: 'e1', type: 'payment.succeeded' })),
      sql(knex('balance_ledger').insert({ card_id: 'c1', delta_minor: -100 })),
      sql(knex('events').insert({ id: 'e2', type: 'refund.succeeded' })),
      sql(knex('balance_ledger').insert({ card_id: 'c2', delta_minor: 50 })),
      sql(knex('events').insert({ id: 'e3', type: 'payment.failed' })),
    ]);
    expect(merged.map((s) => s.sql)).to.deep.equal([
      'update "operations" set "status" = ? where "id" = ?',
      'insert into "events" ("id", "type") values (?, ?), (?, ?), (?, ?)',
      'insert into "balance_ledger" ("card_id", "delta_minor") values (?, ?), (?, ?)',
    ]);
    expect(merged[1]!.bindings).to.deep.equal(['e1', 'payment.succeeded', 'e2', 'refund.succeeded', 'e3', 'payment.failed']);
    expect(merged[2]!.bindings).to.deep.equal(['c1', -100, 'c2', 50]);
  });

  it('keeps rows with SQL of their own (a raw value, a quoted parenthesis) whole', () => {
    const merged = mergeInserts([
      sql(knex('transactions').insert({ id: 't1', tx_no: knex.raw(`'P' || mps_luhn(to_char(now(), 'YYYY(MM)DD'))`) })),
      sql(knex('transactions').insert({ id: 't2', tx_no: knex.raw(`'it''s)'`) })),
    ]);
    expect(merged).to.have.length(1);
    expect(merged[0]!.sql).to.equal(`insert into "transactions" ("id", "tx_no") values (?, 'P' || mps_luhn(to_char(now(), 'YYYY(MM)DD'))), (?, 'it''s)')`);
    expect(merged[0]!.bindings).to.deep.equal(['t1', 't2']);
  });

  it('leaves alone what is not a plain one-row INSERT: another column list, RETURNING, ON CONFLICT, several rows', () => {
    const statements = [
      sql(knex('events').insert({ id: 'e1', type: 'a' })),
      sql(knex('events').insert({ id: 'e2', type: 'b', merchant_id: 'm' })),
      sql(knex('events').insert({ id: 'e3', type: 'c' }).returning('id')),
      sql(knex('events').insert({ id: 'e4', type: 'd' }).onConflict('id').ignore()),
      sql(knex('events').insert([{ id: 'e5', type: 'e' }, { id: 'e6', type: 'f' }])),
    ];
    expect(mergeInserts(statements)).to.deep.equal(statements);
  });
});
