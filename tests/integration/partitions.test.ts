import { randomUUID } from 'node:crypto';
import { expect } from 'chai';
import { partitionOf, partitionSql } from '../../domain/partition.js';
import { startSystem, type TestSystem } from '../helpers/system.js';

/** The API places payments by a partition computed in SQL, everything else by partitionOf: they must agree. */
describe('partitions: partitionSql in Postgres equals partitionOf in the process', () => {
  let sys: TestSystem;
  before(async () => {
    sys = await startSystem({}, { workers: false });
  });
  after(async () => {
    await sys.stop();
  });

  it('for card ids and operation ids, over several partition counts', async () => {
    const keys = [...Array.from({ length: 200 }, () => randomUUID()), ...Array.from({ length: 50 }, () => `op_${randomUUID().replaceAll('-', '')}`)];
    for (const partitions of [1, 4, 16, 1024]) {
      const { rows } = await sys.deps.db.raw<{ rows: { p: string }[] }>(`SELECT ${partitionSql('k')} AS p FROM unnest(?::text[]) WITH ORDINALITY AS t(k, n) ORDER BY n`, [partitions, keys]);
      expect(rows.map((r) => Number(r.p)), `partitions ${partitions}`).to.deep.equal(keys.map((k) => partitionOf(k, partitions)));
    }
  });
});
