import { expect } from 'chai';
import fc from 'fast-check';
import type { Read, Statement } from '../../db/knex.js';
import { decideWave, wavesOf, type WaveReader } from '../../operations/held-writes.js';

/** Fixed, so that a failure reproduces; FC_SEED / FC_RUNS to explore (as decisions.property.test.ts). */
const options = { seed: Number(process.env.FC_SEED ?? 20_261_201), numRuns: Number(process.env.FC_RUNS ?? 200) };

/**
 * A reader that records each round trip (the cards it was for and the statements sent) and
 * answers as Postgres would: a plain statement `row <v>` gives one row { v }, a UNION ALL of them
 * gives each one's row tagged with its place, in the order of the union.
 */
function recordingReader() {
  const trips: { cards: (string | null)[]; sql: string[] }[] = [];
  const answer = (statement: Statement) => {
    const parts = statement.sql.split(' UNION ALL ');
    if (parts.length === 1) return [{ v: statement.bindings[0] }];
    return parts.map((part, i) => {
      expect(part).to.equal(`(SELECT ${i} AS mps_read, r.* FROM (row ?) r)`);
      return { mps_read: i, v: statement.bindings[i] };
    });
  };
  const reader: WaveReader = {
    read: async (cards, reads) => {
      trips.push({ cards: [...cards], sql: reads.map((r) => r.sql) });
      return reads.map(answer);
    },
  };
  return { reader, trips };
}

const row = (v: string): Statement => ({ sql: 'row ?', bindings: [v] });
const other = (v: string): Statement => ({ sql: 'other ?', bindings: [v] });

describe('unit: a batch in waves (operations/held-writes.ts)', () => {
  describe('wavesOf', () => {
    it('puts each card once per wave, a card’s operations in their order, those without a card in the first', () => {
      const ops = [
        { id: 1, card_id: 'a' },
        { id: 2, card_id: 'b' },
        { id: 3, card_id: 'a' },
        { id: 4, card_id: null },
        { id: 5, card_id: 'a' },
        { id: 6, card_id: 'c' },
      ];
      expect(wavesOf(ops).map((w) => w.map((op) => op.id))).to.deep.equal([[1, 2, 4, 6], [3], [5]]);
    });

    it('keeps every operation exactly once, no card twice in a wave, and each card’s order (property)', () => {
      fc.assert(
        fc.property(fc.array(fc.option(fc.constantFrom('a', 'b', 'c', 'd'), { nil: null }), { maxLength: 40 }), (cards) => {
          const ops = cards.map((card_id, id) => ({ id, card_id }));
          const waves = wavesOf(ops);
          expect(waves.flat().map((op) => op.id).sort((x, y) => x - y)).to.deep.equal(ops.map((op) => op.id));
          for (const wave of waves) {
            const inWave = wave.filter((op) => op.card_id !== null).map((op) => op.card_id);
            expect(new Set(inWave).size).to.equal(inWave.length);
          }
          const waveOf = new Map(waves.flatMap((wave, w) => wave.map((op) => [op.id, w] as const)));
          for (const card of ['a', 'b', 'c', 'd']) {
            const ids = ops.filter((op) => op.card_id === card).map((op) => op.id);
            ids.slice(1).forEach((id, i) => expect(waveOf.get(id)!).to.be.greaterThan(waveOf.get(ids[i]!)!));
          }
        }),
        options,
      );
    });
  });

  describe('decideWave', () => {
    it('sends the reads of one text from every operation as one UNION ALL statement, each getting its own rows', async () => {
      const { reader, trips } = recordingReader();
      const wave = ['a', 'b', 'c'].map((card_id) => ({ card_id }));
      const got = await decideWave(reader, wave, async (op, read: Read) => (await read<{ v: string }>(row(`of ${op.card_id}`)))[0]!.v);
      expect(got).to.deep.equal(['of a', 'of b', 'of c']);
      expect(trips).to.have.length(1);
      expect(trips[0]!.cards).to.deep.equal(['a', 'b', 'c']);
      expect(trips[0]!.sql).to.have.length(1);
      // The place tag does not reach the caller.
      const rows = await decideWave(reader, [{ card_id: 'a' }, { card_id: 'b' }], (_op, read) => read<Record<string, unknown>>(row('x')));
      expect(rows).to.deep.equal([[{ v: 'x' }], [{ v: 'x' }]]);
    });

    it('sends reads of different texts in the same round trip as statements of their own; a lone read goes as written', async () => {
      const { reader, trips } = recordingReader();
      const wave = [{ card_id: 'a' }, { card_id: 'b' }, { card_id: 'c' }];
      const got = await decideWave(reader, wave, async (op, read) => (await read<{ v: string }>(op.card_id === 'b' ? other('b') : row(op.card_id!)))[0]!.v);
      expect(got).to.deep.equal(['a', 'b', 'c']);
      expect(trips).to.have.length(1);
      expect(trips[0]!.sql).to.deep.equal(['(SELECT 0 AS mps_read, r.* FROM (row ?) r) UNION ALL (SELECT 1 AS mps_read, r.* FROM (row ?) r)', 'other ?']);
    });

    it('waits for every operation still deciding: one that reads twice, one that reads nothing, one that reads late', async () => {
      const { reader, trips } = recordingReader();
      const wave = [{ card_id: 'twice' }, { card_id: 'none' }, { card_id: 'late' }];
      const got = await decideWave(reader, wave, async (op, read) => {
        if (op.card_id === 'none') return 'none';
        if (op.card_id === 'late') await new Promise((resolve) => setTimeout(resolve, 5));
        const [first] = await read<{ v: string }>(row(`${op.card_id}-1`));
        if (op.card_id !== 'twice') return first!.v;
        const [second] = await read<{ v: string }>(row(`${op.card_id}-2`));
        return `${first!.v},${second!.v}`;
      });
      expect(got).to.deep.equal(['twice-1,twice-2', 'none', 'late-1']);
      // The first read of `twice` waited for `late`'s: they went together; its second went alone.
      expect(trips.map((t) => t.cards)).to.deep.equal([['twice', 'late'], ['twice']]);
    });

    it('a failed round trip fails every read in it, and the wave with it', async () => {
      const reader: WaveReader = { read: async () => Promise.reject(new Error('connection lost')) };
      const wave = [{ card_id: 'a' }, { card_id: 'b' }];
      let error: unknown;
      await decideWave(reader, wave, (_op, read) => read(row('x'))).catch((err: unknown) => (error = err));
      expect((error as Error).message).to.equal('connection lost');
    });

    it('a decision that throws ends its wave with that error once the others are done', async () => {
      const { reader } = recordingReader();
      const wave = [{ card_id: 'a' }, { card_id: 'b' }];
      const settled: string[] = [];
      let error: unknown;
      await decideWave(reader, wave, async (op, read) => {
        if (op.card_id === 'a') throw new Error('broken rule');
        await read(row('b'));
        settled.push('b read');
      }).catch((err: unknown) => (error = err));
      expect((error as Error).message).to.equal('broken rule');
      // b's read was still sent once a no longer decided: nothing waits forever.
      await new Promise((resolve) => setImmediate(resolve));
      expect(settled).to.deep.equal(['b read']);
    });
  });
});
