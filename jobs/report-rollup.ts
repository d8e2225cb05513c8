import type { Deps } from '../app/deps.js';
import { clearRollups, firstActivity, localDayOf, lockRollup, readRollupState, rollupDay, rollupLimit, writeRollupState } from '../db/queries/reports.js';
import type { MaintenancePayload } from './names.js';

/** How long one run may go on (a first run over a long history goes on at the next tick). */
const DEFAULT_BUDGET_MS = 60_000;

export interface RollupReport {
  /** Local days recomputed in this run (quiet stretches are passed over, not counted). */
  rolled: number;
  /** How far the rollup reaches now: every report aggregates live only what came at or after it. */
  rolled_until: string;
  /** Why it stopped short of now − REPORT_ROLLUP_GRACE_S, if it did. */
  stopped?: 'budget' | 'open-transaction';
  oldest_open?: string;
}

type Step = { done: true; until: Date } | { done: false; until: Date; rolled: number };

const earlier = (a: Date, b: Date) => (a.getTime() <= b.getTime() ? a : b);

/**
 * Moves the report rollup forward to REPORT_ROLLUP_GRACE_S before now: each local day
 * (SETTLEMENT_TZ) with activity since the rollup's reach is recomputed, by day and by hour, from
 * its rows before the new reach, in one transaction that also moves report_rollup_state, so a
 * report (rollup + live part after the reach, one snapshot) counts every row once. The reach
 * never passes the start of a transaction still open: a worker's rows carry their transaction's
 * start time. Rows are never counted on another day later: a refund of last week's payment counts
 * today. A new SETTLEMENT_TZ starts over. Nothing here is on the payment path.
 */
export async function runReportRollup(deps: Pick<Deps, 'db' | 'config' | 'logger'>, payload: MaintenancePayload = {}): Promise<RollupReport> {
  const { db, config } = deps;
  const timeZone = config.SETTLEMENT_TZ;
  const deadline = Date.now() + (typeof payload.budgetMs === 'number' ? payload.budgetMs : DEFAULT_BUDGET_MS);
  let rolled = 0;
  // Where this run goes: fixed by its first step (a later step only lowers it), or it would chase now().
  let target: Date | undefined;
  // The start of the open transaction that set the target, when one did.
  let heldBy: Date | null = null;
  for (;;) {
    const step = await db.transaction(async (trx): Promise<Step> => {
      await lockRollup(trx);
      const { limit_at: fresh, oldest_open: oldestOpen } = await rollupLimit(trx, config.REPORT_ROLLUP_GRACE_S);
      if (!target || fresh.getTime() < target.getTime()) {
        target = fresh;
        heldBy = oldestOpen !== null && oldestOpen.getTime() === fresh.getTime() ? oldestOpen : null;
      }
      const limit = target;
      let state = await readRollupState(trx);
      if (!state || state.time_zone !== timeZone) {
        if (state) await clearRollups(trx);
        // From the start of the first day with activity; with none yet, from the limit.
        const first = await firstActivity(trx, timeZone, null);
        state = { time_zone: timeZone, rolled_until: first ? earlier(first.day_start, limit) : limit };
        await writeRollupState(trx, state);
      }
      const from = state.rolled_until;
      if (limit.getTime() <= from.getTime()) return { done: true, until: from };
      const { day, next_day_start: nextDayStart } = await localDayOf(trx, timeZone, from);
      const to = earlier(nextDayStart, limit);
      const next = await firstActivity(trx, timeZone, from);
      if (!next || next.at.getTime() >= to.getTime()) {
        // Nothing from `from` on to the next row: reach up to that row (or the limit) without writing.
        const until = next ? earlier(next.at, limit) : limit;
        await writeRollupState(trx, { time_zone: timeZone, rolled_until: until });
        return { done: false, until, rolled: 0 };
      }
      await rollupDay(trx, timeZone, day, to);
      await writeRollupState(trx, { time_zone: timeZone, rolled_until: to });
      return { done: false, until: to, rolled: 1 };
    });
    if (!step.done) rolled += step.rolled;
    const outOfTime = !step.done && Date.now() >= deadline;
    if (step.done || outOfTime) {
      const report: RollupReport = { rolled, rolled_until: step.until.toISOString() };
      if (outOfTime) report.stopped = 'budget';
      else if (heldBy) Object.assign(report, { stopped: 'open-transaction', oldest_open: (heldBy as Date).toISOString() });
      deps.logger.info(report, 'report rollup');
      return report;
    }
  }
}
