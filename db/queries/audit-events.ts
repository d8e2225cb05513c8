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
  prev: string;
  now: Date;
  /** Event ids reserved for this turn (bigint, as pg returns it). */
  ids: string[];
}

/**
 * Takes the chain's turn until commit (the row lock on its head; the first append of a chain
 * creates the head) and reserves `count` event ids, so each event links to the one committed
 * before it.
 */
async function lockChainHead(trx: Db, chain: string, count: number): Promise<ChainHead> {
  const lock = () =>
    prepared(
      trx.raw<{ rows: ChainHead[] }>(
        // The ids are drawn once the lock is held (the subquery reads the locked row), so they
        // rise in the order the chain's events are appended.
        `WITH head AS (SELECT chain, hash FROM audit_chain_heads WHERE chain = ? FOR UPDATE)
         SELECT hash AS prev, date_trunc('milliseconds', now()) AS now,
                ARRAY(SELECT nextval('audit_events_id_seq') FROM generate_series(1, ?::int) WHERE head.chain IS NOT NULL) AS ids
           FROM head`,
        [chain, count],
      ),
    );
  let { rows } = await lock();
  if (!rows[0]) {
    await trx.raw(`INSERT INTO audit_chain_heads (chain, last_id, hash) VALUES (?, 0, ?) ON CONFLICT (chain) DO NOTHING`, [chain, GENESIS_HASH]);
    ({ rows } = await lock());
  }
  return rows[0]!;
}

/** A chain's turn: each append links an event to the one before; the head moves once, at the end. */
export interface ChainTurn {
  /** The statement that inserts the next event (up to the number the turn was taken for). */
  append(input: Omit<AuditInput, 'chain'>): Statement;
  /** The statement that moves the head past the events appended (run it once, after them). */
  moveHead(): Statement;
}

/**
 * Takes the chain's turn for `count` events (see lockChainHead). The statements it gives are for
 * the caller to run with its own writes (runTogether) before commit.
 */
export async function takeChainTurn(trx: Db, chain: string, count: number): Promise<ChainTurn> {
  const head = await lockChainHead(trx, chain, count);
  const ids = head.ids.map(Number).sort((a, b) => a - b);
  let last = { id: 0, hash: head.prev };
  return {
    append(input) {
      const id = ids.shift();
      if (id === undefined) throw new Error(`audit chain ${chain}: more events than the turn was taken for`);
      const fields: AuditFields = {
        id,
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
      const hash = chainHash(last.hash, fields);
      const insert = trx('audit_events').insert({ ...fields, context: JSON.stringify(fields.context), created_at: head.now, prev_hash: last.hash, hash }).toSQL();
      last = { id, hash };
      return insert;
    },
    moveHead: () => trx('audit_chain_heads').where({ chain }).update({ last_id: last.id, hash: last.hash }).toSQL(),
  };
}

/** One event: takes its chain's turn and returns the statements that append it and move the head. */
export async function auditAppend(trx: Db, input: AuditInput): Promise<Statement[]> {
  const turn = await takeChainTurn(trx, input.chain ?? 'main', 1);
  return [turn.append(input), turn.moveHead()];
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
