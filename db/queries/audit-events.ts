import type { Knex } from 'knex';
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

export interface ChainHead {
  prev: string;
  now: Date;
  /** Event ids reserved for this turn (bigint: a string as pg returns it, a number through JSON). */
  ids: (string | number)[];
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
        `WITH ${chainHeadCtes('?', '?::int')} SELECT * FROM turn`,
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
  return turnOf(trx, chain, await lockChainHead(trx, chain, count));
}

/**
 * The CTEs `head` (the chain `chainSql` locked) and `turn` (its ChainHead, `countSql` ids drawn
 * once the lock is held: the subquery reads the locked row, so they rise in the order the chain's
 * events are appended), for a statement that takes the turn along with other work. No head row
 * (a chain's first use), no turn.
 */
export const chainHeadCtes = (chainSql: string, countSql: string) =>
  `head AS (SELECT chain, hash FROM audit_chain_heads WHERE chain = ${chainSql} FOR UPDATE),
   turn AS (SELECT hash AS prev, date_trunc('milliseconds', now()) AS now,
                   ARRAY(SELECT nextval('audit_events_id_seq') FROM generate_series(1, ${countSql}) WHERE head.chain IS NOT NULL) AS ids
              FROM head)`;

/** The turn of a chain whose head the transaction has locked (lockChainHead, or a statement with chainHeadCtes). */
export function turnOf(trx: Db, chain: string, head: ChainHead): ChainTurn {
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

export interface AuditRow extends Omit<AuditFields, 'created_at'> {
  created_at: Date;
  prev_hash: string;
  hash: string;
}

/** True when the event links to `prevHash` and its hash covers what is stored. */
export function linkHolds(prevHash: string, row: AuditRow): boolean {
  return row.prev_hash === prevHash && chainHash(row.prev_hash, hashedFields(row)) === row.hash;
}

/** The fields the hash covers, picked by name: a row read with extra columns hashes the same. */
function hashedFields(row: AuditRow): AuditFields {
  const { id, chain, actor_type, actor_id, role, action, object_type, object_id, context, request_id, ip } = row;
  return { id, chain, actor_type, actor_id, role, action, object_type, object_id, context, request_id, ip, created_at: row.created_at.toISOString() };
}

/** Where a chain's remaining events start: its newest checkpoint, or the genesis of an unarchived chain. */
export interface ChainStart {
  last_id: number;
  last_hash: string;
  archived_total: number;
}

const UNARCHIVED: ChainStart = { last_id: 0, last_hash: GENESIS_HASH, archived_total: 0 };

/** The newest checkpoint of every archived chain. */
async function chainStarts(db: Db): Promise<Map<string, ChainStart>> {
  const { rows } = await db.raw<{ rows: (ChainStart & { chain: string })[] }>(
    'SELECT DISTINCT ON (chain) chain, last_id, last_hash, archived_total FROM audit_checkpoints ORDER BY chain, id DESC',
  );
  return new Map(rows.map(({ chain, ...start }) => [chain, start]));
}

/** What GET /v1/audit/verify answers (API.md). */
export interface AuditVerification {
  ok: boolean;
  checked: number;
  first_broken_id: number | null;
}

/** How many events are archived behind the chains' checkpoints (verification does not read them). */
export async function archivedAuditTotal(db: Db): Promise<number> {
  return [...(await chainStarts(db)).values()].reduce((sum, start) => sum + start.archived_total, 0);
}

/**
 * Walks every chain in order from its checkpoint (or genesis) and reports the first row whose link or
 * hash does not hold: an edited row fails its own hash, a deleted one breaks the next row's link in its
 * chain, and a row left behind a checkpoint is out of place. Reads one snapshot, so archiving or
 * appends running meanwhile cannot make it see a chain half-moved.
 */
export async function verifyAuditChain(db: Db, batch = 5000): Promise<AuditVerification> {
  if (!(db as Knex.Transaction).isTransaction) {
    return db.transaction((trx) => verifyAuditChain(trx, batch), { isolationLevel: 'repeatable read', readOnly: true });
  }
  const starts = await chainStarts(db);
  const heads = new Map([...starts].map(([chain, start]) => [chain, start.last_hash]));
  let checked = 0;
  let afterId = 0;
  for (;;) {
    const rows = await db<AuditRow>('audit_events').where('id', '>', afterId).orderBy('id').limit(batch);
    for (const row of rows) {
      const behindCheckpoint = row.id <= (starts.get(row.chain)?.last_id ?? 0);
      if (behindCheckpoint || !linkHolds(heads.get(row.chain) ?? GENESIS_HASH, row)) return { ok: false, checked, first_broken_id: row.id };
      heads.set(row.chain, row.hash);
      checked++;
    }
    if (rows.length < batch) return { ok: true, checked, first_broken_id: null };
    afterId = rows[rows.length - 1]!.id;
  }
}

/** The chains that have events (every chain has a head from its first append on). */
export const auditChains = (db: Db): Promise<string[]> => db('audit_chain_heads').orderBy('chain').pluck('chain');

/** A chain's start and its next `limit` events after it, each marked whether it is older than `days`. */
export async function chainPrefix(trx: Db, chain: string, days: number, limit: number): Promise<{ start: ChainStart; rows: (AuditRow & { expired: boolean })[] }> {
  const start = (await chainStarts(trx)).get(chain) ?? UNARCHIVED;
  const rows = await trx<AuditRow & { expired: boolean }>('audit_events')
    .select('*', trx.raw('created_at < now() - make_interval(days => ?) AS expired', [days]))
    .where({ chain })
    .andWhere('id', '>', start.last_id)
    .orderBy('id')
    .limit(limit);
  return { start, rows };
}

/**
 * Deletes a chain's events from its start up to `last` (a prefix read by chainPrefix) and appends the
 * checkpoint that lets verification start after them; both in the caller's transaction. Throws if
 * another run deleted any of them first, so that the transaction rolls back.
 */
export async function archiveChainPrefix(trx: Knex.Transaction, chain: string, start: ChainStart, last: AuditRow, count: number): Promise<void> {
  const deleted = await trx('audit_events').where({ chain }).andWhere('id', '>', start.last_id).andWhere('id', '<=', last.id).del();
  if (deleted !== count) throw new Error(`audit chain ${chain}: expected to archive ${count} events, found ${deleted} (another archiving run?)`);
  await trx('audit_checkpoints').insert({ chain, last_id: last.id, last_hash: last.hash, archived_total: start.archived_total + count });
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
