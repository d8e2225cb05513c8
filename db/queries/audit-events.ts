import { prepared, runTogether, type Db, type Statement } from '../knex.js';
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

interface ChainHead {
  id: string; // bigint, as pg returns it
  now: Date;
  prev: string;
}

/**
 * Takes the chain's turn until commit (the row lock on its head; the first append of a chain
 * creates the head) and reserves the next event id, so each event links to the one committed
 * before it. Call it late in a transaction to keep that turn short.
 */
async function lockChainHead(trx: Db, chain: string): Promise<ChainHead> {
  const lock = () =>
    prepared(
      trx.raw<{ rows: ChainHead[] }>(
        `SELECT hash AS prev, nextval('audit_events_id_seq') AS id, date_trunc('milliseconds', now()) AS now
           FROM audit_chain_heads WHERE chain = ? FOR UPDATE`,
        [chain],
      ),
    );
  let { rows } = await lock();
  if (!rows[0]) {
    await trx.raw(`INSERT INTO audit_chain_heads (chain, last_id, hash) VALUES (?, 0, ?) ON CONFLICT (chain) DO NOTHING`, [chain, GENESIS_HASH]);
    ({ rows } = await lock());
  }
  return rows[0]!;
}

/**
 * Takes the chain's turn (see lockChainHead) and returns the statements that append the event
 * and move the head, for the caller to run with its own writes (runTogether) before commit.
 */
export async function auditAppend(trx: Db, input: AuditInput): Promise<Statement[]> {
  const chain = input.chain ?? 'main';
  const head = await lockChainHead(trx, chain);
  const fields: AuditFields = {
    id: Number(head.id),
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
  const hash = chainHash(head.prev, fields);
  return [
    trx('audit_events').insert({ ...fields, context: JSON.stringify(fields.context), created_at: head.now, prev_hash: head.prev, hash }).toSQL(),
    trx('audit_chain_heads').where({ chain }).update({ last_id: fields.id, hash }).toSQL(),
  ];
}

/** Appends an event to its hash chain inside the caller's transaction. */
export async function appendAudit(trx: Db, input: AuditInput): Promise<void> {
  const [insert, moveHead] = await auditAppend(trx, input);
  await runTogether(trx, insert!, [moveHead!]);
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
