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
  /** Money operations chain per card partition (already serial); everything else into "main". */
  chain?: string;
}

// Namespace of the advisory locks that make appends to one chain take turns.
const AUDIT_LOCK_SPACE = 7_246_001;

/**
 * Appends to a hash chain inside the caller's transaction. The advisory lock makes appends to the
 * chain take turns from here to commit, so each event links to the one committed before it. Call
 * it last in a transaction to keep that turn short.
 */
export async function appendAudit(trx: Db, input: AuditInput): Promise<void> {
  const chain = input.chain ?? 'main';
  await trx.raw('SELECT pg_advisory_xact_lock(?, hashtext(?))', [AUDIT_LOCK_SPACE, chain]);
  const { rows } = await trx.raw<{ rows: { id: number; now: Date; prev: string | null }[] }>(
    `SELECT nextval('audit_events_id_seq') AS id, date_trunc('milliseconds', now()) AS now,
            (SELECT hash FROM audit_events WHERE chain = ? ORDER BY id DESC LIMIT 1) AS prev`,
    [chain],
  );
  const head = rows[0]!;
  const fields: AuditFields = {
    id: head.id,
    chain,
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

interface AuditRow extends Omit<AuditFields, 'created_at'> {
  created_at: Date;
  prev_hash: string;
  hash: string;
}

/**
 * Walks every chain in order and reports the first row whose link or hash does not hold: an
 * edited row fails its own hash, a deleted one breaks the next row's link in its chain.
 */
export async function verifyAuditChain(db: Db, batch = 5000): Promise<{ ok: boolean; checked: number; first_broken_id: number | null }> {
  const heads = new Map<string, string>();
  let checked = 0;
  let afterId = 0;
  for (;;) {
    const rows = await db<AuditRow>('audit_events').where('id', '>', afterId).orderBy('id').limit(batch);
    for (const row of rows) {
      const { prev_hash, hash, ...rest } = row;
      const fields: AuditFields = { ...rest, created_at: row.created_at.toISOString() };
      if (prev_hash !== (heads.get(row.chain) ?? GENESIS_HASH) || chainHash(prev_hash, fields) !== hash) return { ok: false, checked, first_broken_id: row.id };
      heads.set(row.chain, hash);
      checked++;
    }
    if (rows.length < batch) return { ok: true, checked, first_broken_id: null };
    afterId = rows[rows.length - 1]!.id;
  }
}

export async function listAuditEvents(
  db: Db,
  f: { objectType?: string; objectId?: string; action?: string; from?: string; to?: string; beforeId?: number; limit: number },
): Promise<AuditRow[]> {
  const q = db<AuditRow>('audit_events').orderBy('id', 'desc').limit(f.limit + 1);
  if (f.objectType) q.where('object_type', f.objectType);
  if (f.objectId) q.where('object_id', f.objectId);
  if (f.action) q.where('action', f.action);
  if (f.from) q.where('created_at', '>=', f.from);
  if (f.to) q.where('created_at', '<', f.to);
  if (f.beforeId) q.where('id', '<', f.beforeId);
  return q;
}
