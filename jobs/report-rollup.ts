import type { Deps } from '../app/deps.js';
import { clearRollups, firstActivityDay, lockRollup, readRollupState, rollupDay, rollupLimit, writeRollupState } from '../db/queries/reports.js';
import { addDays, minDay } from '../domain/report.js';
import type { MaintenancePayload } from './names.js';

/** How long one run may keep rolling up days (a first run over a long history goes on at the next tick). */
const DEFAULT_BUDGET_MS = 60_000;

export interface RollupReport {
  /** Days recomputed in this run (days without activity are passed over, not counted). */
  rolled: number;
  /** The first local day not rolled up yet: the live part of every report starts there. */
  next_day: string;
  /** Why it stopped before the last day closed by REPORT_ROLLUP_GRACE_S, if it did. */
  stopped?: 'budget' | 'open-transaction';
  oldest_open?: string;
}

type Step = { done: true; nextDay: string; heldByOpen: Date | null } | { done: false; nextDay: string; rolled: number };

/**
 * Rolls closed local days (SETTLEMENT_TZ) into report_daily and report_hourly, oldest first, one
 * day per transaction that also moves report_rollup_state.next_day past it, so a report sees a
 * day either rolled up or not at all, never twice. A day is closed once it ended
 * REPORT_ROLLUP_GRACE_S ago and no transaction that began before its end is still open (a worker's
 * rows carry its transaction's start time). Rolled days are not recomputed: what happens later
 * (a refund of that day's payment) counts on its own day. A new SETTLEMENT_TZ starts over.
 * Never on the payment path: reports read the rollup plus a live aggregate of the days after it.
 */
export async function runReportRollup(deps: Pick<Deps, 'db' | 'config' | 'logger'>, payload: MaintenancePayload = {}): Promise<RollupReport> {
  const { db, config } = deps;
  const timeZone = config.SETTLEMENT_TZ;
  const deadline = Date.now() + (typeof payload.budgetMs === 'number' ? payload.budgetMs : DEFAULT_BUDGET_MS);
  let rolled = 0;
  for (;;) {
    const step = await db.transaction(async (trx): Promise<Step> => {
      await lockRollup(trx);
      const limits = await rollupLimit(trx, timeZone, config.REPORT_ROLLUP_GRACE_S);
      const heldByOpen = limits.open_day !== null && limits.open_day < limits.grace_day;
      const limitDay = heldByOpen ? limits.open_day! : limits.grace_day;
      let state = await readRollupState(trx);
      if (!state || state.time_zone !== timeZone) {
        if (state) await clearRollups(trx);
        // Start at the first day with activity; with none yet, at the first day not closed.
        const first = await firstActivityDay(trx, timeZone, null);
        state = { time_zone: timeZone, next_day: first === null ? limitDay : minDay(first, limitDay) };
        await writeRollupState(trx, state);
      }
      const day = state.next_day;
      if (day >= limitDay) return { done: true, nextDay: day, heldByOpen: heldByOpen && day < limits.grace_day ? limits.oldest_open : null };
      const active = await firstActivityDay(trx, timeZone, day);
      if (active === null || active > day) {
        // Nothing on `day`, nor up to `active`: pass over the quiet days without rows for them.
        const nextDay = active === null ? limitDay : minDay(active, limitDay);
        await writeRollupState(trx, { time_zone: timeZone, next_day: nextDay });
        return { done: false, nextDay, rolled: 0 };
      }
      await rollupDay(trx, timeZone, day);
      await writeRollupState(trx, { time_zone: timeZone, next_day: addDays(day, 1) });
      return { done: false, nextDay: addDays(day, 1), rolled: 1 };
    });
    if (!step.done) rolled += step.rolled;
    const outOfTime = !step.done && Date.now() >= deadline;
    if (step.done || outOfTime) {
      const report: RollupReport = { rolled, next_day: step.nextDay };
      if (outOfTime) report.stopped = 'budget';
      else if (step.done && step.heldByOpen) Object.assign(report, { stopped: 'open-transaction', oldest_open: step.heldByOpen.toISOString() });
      deps.logger.info(report, 'report rollup');
      return report;
    }
  }
}
