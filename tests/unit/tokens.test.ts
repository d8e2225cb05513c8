import { createHash } from 'node:crypto';
import { expect } from 'chai';
import { newApiKey, newQrToken, randomSecret, roleOfKey, sameDigest, sha256, type KeyRole } from '../../domain/tokens.js';

const hex = (text: string) => createHash('sha256').update(text, 'utf8').digest('hex');
const PREFIX: Record<KeyRole, string> = { admin: 'mps_admin_', merchant: 'mps_mk_', app: 'mps_app_', member: 'mps_mt_' };

describe('domain/tokens', () => {
  it('sha256 is the lowercase hex SHA-256 of the UTF-8 text', () => {
    expect(sha256('abc')).to.equal('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
    expect(sha256('張')).to.equal(hex('張'));
  });

  it('randomSecret is base64url of the given number of random bytes', () => {
    const s = randomSecret(16);
    expect(s).to.match(/^[A-Za-z0-9_-]{22}$/);
    expect(Buffer.from(s, 'base64url')).to.have.length(16);
  });

  describe('newQrToken', () => {
    it("is 'mpsq_' + 32 random bytes base64url (43 characters), stored as its SHA-256", () => {
      const { plain, hash } = newQrToken();
      expect(plain).to.match(/^mpsq_[A-Za-z0-9_-]{43}$/);
      const bytes = Buffer.from(plain.slice('mpsq_'.length), 'base64url');
      expect(bytes).to.have.length(32);
      expect(bytes.toString('base64url')).to.equal(plain.slice(5));
      expect(hash).to.equal(hex(plain));
      expect(hash).to.not.contain(plain.slice(5));
    });

    it('never repeats', () => {
      const seen = new Set(Array.from({ length: 1000 }, () => newQrToken().plain));
      expect(seen.size).to.equal(1000);
    });
  });

  describe('newApiKey / roleOfKey', () => {
    for (const role of Object.keys(PREFIX) as KeyRole[]) {
      it(`${role} keys start with ${PREFIX[role]} and round-trip through roleOfKey`, () => {
        const { key, hash, prefix } = newApiKey(role);
        expect(key.startsWith(PREFIX[role])).to.equal(true);
        expect(key.slice(PREFIX[role].length)).to.match(/^[A-Za-z0-9_-]{43}$/);
        expect(hash).to.equal(hex(key));
        expect(prefix).to.equal(key.slice(0, PREFIX[role].length + 6));
        expect(roleOfKey(key)).to.equal(role);
      });
    }

    it('gives distinct keys each time', () => {
      expect(newApiKey('merchant').key).to.not.equal(newApiKey('merchant').key);
    });

    it('knows no role for anything else', () => {
      for (const key of ['', 'mps_', 'mps_mk', 'MPS_MK_abc', 'mpsq_abc', 'sk_live_abc', ' mps_mk_abc']) {
        expect(roleOfKey(key), JSON.stringify(key)).to.equal(undefined);
      }
    });
  });

  describe('sameDigest', () => {
    const a = sha256('a');
    const b = sha256('b');

    it('is true for the same digest, also in another letter case', () => {
      expect(sameDigest(a, a)).to.equal(true);
      expect(sameDigest(a, a.toUpperCase())).to.equal(true);
    });

    it('is false for different digests, also when only the last nibble differs', () => {
      expect(sameDigest(a, b)).to.equal(false);
      const last = a.at(-1) === '0' ? '1' : '0';
      expect(sameDigest(a, a.slice(0, -1) + last)).to.equal(false);
    });

    it('is false for digests of different lengths', () => {
      expect(sameDigest(a, a.slice(0, 62))).to.equal(false);
      expect(sameDigest(a, '')).to.equal(false);
    });

    it('is false for anything that is not a hex digest', () => {
      expect(sameDigest('', '')).to.equal(false);
      expect(sameDigest('zz', 'yy')).to.equal(false); // both decode to zero bytes
      expect(sameDigest('abc', 'abd')).to.equal(false); // odd length: the last nibble is dropped
      expect(sameDigest(`${a}zz`, `${a}yy`)).to.equal(false);
      expect(sameDigest(a, `${a}zz`)).to.equal(false);
    });
  });
});
