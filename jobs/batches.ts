/** A kind of retention work, done one bounded statement (or transaction) at a time. */
export interface BatchStep {
  name: string;
  /** Does one batch of at most `limit` rows and returns how many it changed; 0 means nothing is left. */
  run(limit: number): Promise<number>;
}

export interface StepReport {
  rows: number;
  batches: number;
  /** The slowest single batch: how long the step held its rows at most. */
  longestMs: number;
  /** False when the time budget ran out before this step found nothing more to do. */
  finished: boolean;
}

/**
 * Runs the steps round-robin, one batch each in turn, until every step is done or `budgetMs` has
 * passed. Round-robin, so that a huge backlog in one table cannot starve the others; the budget is
 * checked before each round after the first, so every run moves every step on by at least one
 * batch (a run over budget by one round at most), and whatever is left waits for the next run.
 * `pauseMs` after each batch that found rows keeps the purge from running back to back.
 */
export async function runInBatches(steps: readonly BatchStep[], options: { batchSize: number; budgetMs: number; pauseMs?: number }): Promise<Record<string, StepReport>> {
  const deadline = Date.now() + options.budgetMs;
  const reports: Record<string, StepReport> = Object.fromEntries(steps.map((s) => [s.name, { rows: 0, batches: 0, longestMs: 0, finished: false }]));
  let active = [...steps];
  for (let round = 0; active.length && (round === 0 || Date.now() < deadline); round++) {
    for (const step of active) {
      const report = reports[step.name]!;
      const started = performance.now();
      const rows = await step.run(options.batchSize);
      report.longestMs = Math.max(report.longestMs, Math.round(performance.now() - started));
      if (rows > 0) {
        report.rows += rows;
        report.batches++;
        // Room between batches: for the WAL of the last one to be flushed ahead of the payments' commits.
        if (options.pauseMs) await new Promise((resolve) => setTimeout(resolve, options.pauseMs));
      }
      // A short batch means the step has caught up: it would only find nothing next time.
      if (rows < options.batchSize) report.finished = true;
    }
    active = active.filter((s) => !reports[s.name]!.finished);
  }
  return reports;
}
