import { createHash } from 'node:crypto';
import { expect } from 'chai';
import fc from 'fast-check';
import { GENESIS_HASH, canonicalJson, chainHash, type AuditFields } from '../../domain/audit-chain.js';

const EVENT: AuditFields = {
  id: 42,
  chain: 'card-ops-3',
  actor_type: 'api_key',
  actor_id: 'k_1',
  role: 'merchant',
  action: 'payment.charge',
  object_type: 'transaction',
  object_id: 'PAY20261122000001',
  context: { amount: '299.00', card: { type: 'prepaid', level: 1 }, tags: ['a', 'b'] },
  request_id: 'req-1',
  ip: '10.0.0.1',
  created_at: '2026-11-22T08:00:00.123Z',
};

/** The same value with the keys of every object inserted in reverse order. */
function reverseKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(reverseKeys);
  if (value && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value as Record<string, unknown>).reverse().map(([k, v]) => [k, reverseKeys(v)]));
  }
  return value;
}

describe('domain/audit-chain', () => {
  describe('canonicalJson', () => {
    it('sorts keys at every depth, inside arrays too', () => {
      const value = { b: 1, a: { d: [{ z: 1, y: { q: 2, p: 1 } }], c: 2 } };
      expect(canonicalJson(value)).to.equal('{"a":{"c":2,"d":[{"y":{"p":1,"q":2},"z":1}]},"b":1}');
    });

    it('keeps array order (arrays are ordered data)', () => {
      expect(canonicalJson([3, 1, 2])).to.equal('[3,1,2]');
    });

    it('writes scalars as JSON', () => {
      expect(canonicalJson(null)).to.equal('null');
      expect(canonicalJson('a"b')).to.equal('"a\\"b"');
      expect(canonicalJson(1.5)).to.equal('1.5');
      expect(canonicalJson(true)).to.equal('true');
      expect(canonicalJson({ '張': '小明' })).to.equal('{"張":"小明"}');
    });

    it('drops undefined object members like JSON does', () => {
      expect(canonicalJson({ a: 1, b: undefined })).to.equal('{"a":1}');
    });

    it('gives the same text for any key insertion order, and that text is the same JSON value', () => {
      fc.assert(
        fc.property(fc.jsonValue(), (value) => {
          const text = canonicalJson(value);
          expect(canonicalJson(reverseKeys(value))).to.equal(text);
          expect(JSON.parse(text)).to.deep.equal(JSON.parse(JSON.stringify(value)));
        }),
        { numRuns: 300 },
      );
    });

    // appendAudit hashes the context as given but stores JSON.stringify(context) in jsonb; a verifier
    // recomputes the hash from what it reads back, so the two must agree for any context.
    it('hashes a context the same before and after a JSON round trip (what jsonb stores)', () => {
      const contexts: Record<string, unknown>[] = [
        { at: new Date('2026-11-22T08:00:00.123Z') },
        { list: [1, undefined, 3] },
        { nested: { when: new Date(0), items: [{ a: undefined }] } },
      ];
      for (const context of contexts) {
        const stored = JSON.parse(JSON.stringify(context)) as Record<string, unknown>;
        expect(canonicalJson(context), JSON.stringify(context)).to.equal(canonicalJson(stored));
        expect(chainHash(GENESIS_HASH, { ...EVENT, context })).to.equal(chainHash(GENESIS_HASH, { ...EVENT, context: stored }));
      }
    });

    it('always produces valid JSON', () => {
      expect(() => JSON.parse(canonicalJson({ list: [1, undefined, () => 1] }))).to.not.throw();
    });
  });

  describe('chainHash', () => {
    it('is SHA-256 of prev_hash followed by the canonical JSON of the event', () => {
      const expected = createHash('sha256')
        .update(GENESIS_HASH + canonicalJson(EVENT))
        .digest('hex');
      expect(chainHash(GENESIS_HASH, EVENT)).to.equal(expected);
      expect(chainHash(GENESIS_HASH, EVENT)).to.match(/^[0-9a-f]{64}$/);
    });

    it('starts from a genesis hash of 64 zeros', () => {
      expect(GENESIS_HASH).to.equal('0'.repeat(64));
    });

    it('does not depend on the key order of the event', () => {
      expect(chainHash(GENESIS_HASH, reverseKeys(EVENT) as AuditFields)).to.equal(chainHash(GENESIS_HASH, EVENT));
    });

    it('depends on the previous hash', () => {
      const a = chainHash(GENESIS_HASH, EVENT);
      const b = chainHash('1'.repeat(64), EVENT);
      expect(a).to.not.equal(b);
      // and links: the next event's hash changes when an earlier one does
      const next = { ...EVENT, id: 43 };
      expect(chainHash(a, next)).to.not.equal(chainHash(chainHash(GENESIS_HASH, { ...EVENT, ip: '10.0.0.2' }), next));
    });

    const changes: Record<keyof AuditFields, unknown> = {
      id: 43,
      chain: 'main',
      actor_type: 'system',
      actor_id: null,
      role: 'admin',
      action: 'payment.refund',
      object_type: 'card',
      object_id: 'PAY20261122000002',
      context: { ...EVENT.context, amount: '299.01' },
      request_id: 'req-2',
      ip: null,
      created_at: '2026-11-22T08:00:00.124Z',
    };
    for (const [field, value] of Object.entries(changes)) {
      it(`changes when ${field} changes`, () => {
        const changed = { ...EVENT, [field]: value } as AuditFields;
        expect(chainHash(GENESIS_HASH, changed)).to.not.equal(chainHash(GENESIS_HASH, EVENT));
      });
    }

    it('changes when a value deep inside the context changes', () => {
      const deep = { ...EVENT, context: { ...EVENT.context, card: { type: 'prepaid', level: 2 } } };
      expect(chainHash(GENESIS_HASH, deep)).to.not.equal(chainHash(GENESIS_HASH, EVENT));
    });

    it('does not confuse a string with a number of the same digits', () => {
      expect(chainHash(GENESIS_HASH, { ...EVENT, context: { n: 1 } })).to.not.equal(chainHash(GENESIS_HASH, { ...EVENT, context: { n: '1' } }));
    });
  });
});
