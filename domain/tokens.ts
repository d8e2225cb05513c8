import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

/** SHA-256 hex: how QR tokens and API keys are stored (256-bit random secrets need no slow hash). */
export const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');

export const randomSecret = (bytes = 32) => randomBytes(bytes).toString('base64url');

/** QR token: `mpsq_` + 32 random bytes, shown once, stored as its hash. */
export function newQrToken(): { plain: string; hash: string } {
  const plain = `mpsq_${randomSecret(32)}`;
  return { plain, hash: sha256(plain) };
}

export type KeyRole = 'admin' | 'merchant' | 'app' | 'member';
const KEY_PREFIX: Record<KeyRole, string> = { admin: 'mps_admin_', merchant: 'mps_mk_', app: 'mps_app_', member: 'mps_mt_' };

/** API key of a role; `prefix` is the visible part kept in clear for operators. */
export function newApiKey(role: KeyRole): { key: string; hash: string; prefix: string } {
  const key = `${KEY_PREFIX[role]}${randomSecret(32)}`;
  return { key, hash: sha256(key), prefix: key.slice(0, KEY_PREFIX[role].length + 6) };
}

export function roleOfKey(key: string): KeyRole | undefined {
  return (Object.keys(KEY_PREFIX) as KeyRole[]).find((r) => key.startsWith(KEY_PREFIX[r]));
}

const HEX_DIGEST = /^(?:[0-9a-fA-F]{2})+$/;

/**
 * Constant-time comparison of two hex digests. Anything else is unequal: Buffer.from(…, 'hex')
 * stops at the first bad character, so 'abc' and 'abd' (or two non-hex strings) would match.
 */
export function sameDigest(a: string, b: string): boolean {
  if (!HEX_DIGEST.test(a) || !HEX_DIGEST.test(b)) return false;
  const x = Buffer.from(a, 'hex');
  const y = Buffer.from(b, 'hex');
  return x.length === y.length && timingSafeEqual(x, y);
}
