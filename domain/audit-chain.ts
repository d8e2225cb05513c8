import { createHash } from 'node:crypto';

/** The fields of an audit event that the hash chain covers (everything but the hashes). */
export interface AuditFields {
  id: number;
  /** The chain this event links into: a card partition's, or "main". */
  chain: string;
  actor_type: string;
  actor_id: string | null;
  role: string | null;
  action: string;
  object_type: string;
  object_id: string | null;
  context: Record<string, unknown>;
  request_id: string | null;
  ip: string | null;
  created_at: string; // ISO 8601 with milliseconds
}

export const GENESIS_HASH = '0'.repeat(64);

/**
 * JSON with object keys sorted at every depth, so the same event always hashes the same. Values
 * are taken as JSON.stringify takes them (toJSON, so a Date is its ISO string; undefined in an
 * array is null), because the context is stored as JSON and verified from what is read back.
 */
export function canonicalJson(value: unknown): string {
  if (value && typeof value === 'object' && typeof (value as { toJSON?: unknown }).toJSON === 'function') {
    return canonicalJson((value as { toJSON: () => unknown }).toJSON());
  }
  if (Array.isArray(value)) return `[${value.map((v) => (v === undefined || typeof v === 'function' || typeof v === 'symbol' ? 'null' : canonicalJson(v))).join(',')}]`;
  if (value && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined && typeof v !== 'function' && typeof v !== 'symbol')
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

/** hash = SHA-256(prev_hash ‖ canonical JSON of the event). */
export function chainHash(prevHash: string, event: AuditFields): string {
  return createHash('sha256').update(prevHash).update(canonicalJson(event)).digest('hex');
}
