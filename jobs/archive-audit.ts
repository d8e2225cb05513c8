import { mkdir, open } from 'node:fs/promises';
import { join } from 'node:path';
import type { Deps } from '../app/deps.js';
import { archiveChainPrefix, auditChains, chainPrefix, linkHolds, type AuditRow } from '../db/queries/audit-events.js';
import type { BatchStep } from './batches.js';

/**
 * Archiving audit events past AUDIT_RETENTION_DAYS, one chain prefix per transaction: the oldest
 * events of a chain after its checkpoint, up to the first one still within retention. Before they go
 * their links are checked from the checkpoint (archiving must not launder a tampered event into a
 * clean checkpoint: a broken chain is left as it is, for verify to report), they are written to
 * AUDIT_ARCHIVE_DIR when set, and a checkpoint with the last one's id and hash is appended in the
 * same transaction as the delete.
 */
export function auditArchiveStep(deps: Deps): BatchStep {
  let chains: string[] | undefined;
  return {
    name: 'auditEvents',
    async run(limit) {
      chains ??= await auditChains(deps.db);
      while (chains.length) {
        const archived = await archiveOldestOfChain(deps, chains[0]!, limit);
        if (archived > 0) return archived;
        chains.shift(); // this chain is done; the next batch goes on with the next
      }
      return 0;
    },
  };
}

async function archiveOldestOfChain(deps: Deps, chain: string, limit: number): Promise<number> {
  return deps.db.transaction(async (trx) => {
    const { start, rows } = await chainPrefix(trx, chain, deps.config.AUDIT_RETENTION_DAYS, limit);
    const firstKept = rows.findIndex((r) => !r.expired);
    const expired = firstKept === -1 ? rows : rows.slice(0, firstKept);
    if (!expired.length) return 0;
    let prev = start.last_hash;
    for (const row of expired) {
      if (!linkHolds(prev, row)) {
        deps.logger.error({ chain, event_id: row.id }, 'audit chain broken: its events are not archived');
        return 0;
      }
      prev = row.hash;
    }
    if (deps.config.AUDIT_ARCHIVE_DIR) await exportEvents(deps.config.AUDIT_ARCHIVE_DIR, chain, expired);
    await archiveChainPrefix(trx, chain, start, expired[expired.length - 1]!, expired.length);
    return expired.length;
  });
}

/** One JSON line per event as stored (prev_hash and hash included, so the file verifies on its own), flushed to disk. */
async function exportEvents(dir: string, chain: string, rows: AuditRow[]): Promise<void> {
  await mkdir(dir, { recursive: true });
  const file = join(dir, `audit-${chain.replace(/[^a-zA-Z0-9_-]/g, '_')}-${rows[0]!.id}-${rows[rows.length - 1]!.id}.jsonl`);
  const handle = await open(file, 'w');
  try {
    await handle.writeFile(rows.map(({ expired: _expired, ...row }: AuditRow & { expired?: boolean }) => JSON.stringify(row)).join('\n') + '\n');
    await handle.sync();
  } finally {
    await handle.close();
  }
}
