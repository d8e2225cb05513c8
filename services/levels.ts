import type { Db } from '../db/knex.js';
import { replaceLevelRows, type LevelRow } from '../db/queries/levels.js';
import { recomputeCardLevels } from '../db/queries/member-cards.js';
import type { Caller } from '../domain/principal.js';
import { auditBy } from './audit.js';

/** Replaces the whole level table (validated by api/schemas/levels.ts); stored card levels follow the new thresholds in the same transaction. */
export async function replaceLevels(db: Db, caller: Caller, levels: Omit<LevelRow, 'updated_at'>[]): Promise<LevelRow[]> {
  return db.transaction(async (trx) => {
    const replaced = await replaceLevelRows(trx, [...levels].sort((a, b) => a.level - b.level));
    // Stored levels follow the new thresholds at once, so no card shows a level the table no longer has.
    const moved = await recomputeCardLevels(trx);
    await auditBy(trx, caller, { action: 'levels.replace', objectType: 'membership_levels', objectId: 'all', context: { levels, cards_moved: moved } });
    return replaced;
  });
}
