import type { Db } from '../knex.js';
import { GENESIS_HASH, chainHash, type AuditFields } from '../../domain/audit-chain.js';

export interface AuditInput {
  actorType: 'api_key' | 'system';
  actorId?: string | null;
  role?: string | null;
  action: string;
  objectType: string;
  objectId?: string | null;
  context?: Record<string, unknown>;
  requestId?: string | null;
  ip?: string | null;
}

// Any constant works; it names the one chain so that appends take turns.
const AUDIT_CHAIN_LOCK = 7_246_001;

/**
 * Appends to the hash chain inside the caller's transaction. The advisory lock makes appends take
 * turns from here to commit, so each event links to the one committed before it. Call it last in
 * a transaction to keep that turn short.
 */
export async function appendAudit(trx: Db, input: AuditInput): Promise<void> {
  await trx.raw('SELECT pg_advisory_xact_lock(?)', [AUDIT_CHAIN_LOCK]);
  const { rows } = await trx.raw<{ rows: { id: number; now: Date; prev: string | null }[] }>(
    `SELECT nextval('audit_events_id_seq') AS id, date_trunc('milliseconds', now()) AS now,
            (SELECT hash FROM audit_events ORDER BY id DESC LIMIT 1) AS prev`,
  );
  const head = rows[0]!;
  const fields: AuditFields = {
    id: head.id,
    actor_type: input.actorType,
    actor_id: input.actorId ?? null,
    role: input.role ?? null,
    action: input.action,
    object_type: input.objectType,
    object_id: input.objectId ?? null,
    context: input.context ?? {},
    request_id: input.requestId ?? null,
    ip: input.ip ?? null,
    created_at: head.now.toISOString(),
  };
  const prevHash = head.prev ?? GENESIS_HASH;
  await trx('audit_events').insert({ ...fields, context: JSON.stringify(fields.context), created_at: head.now, prev_hash: prevHash, hash: chainHash(prevHash, fields) });
}
