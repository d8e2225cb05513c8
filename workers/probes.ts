import type { Deps } from '../app/deps.js';
import { oldestOpenAgeSeconds } from '../db/queries/operations.js';

export interface RunningProbes {
  stop(): void;
}

/**
 * Samples, on a timer rather than at scrape (a scrape must not load Postgres), the age of the
 * oldest open operation and whether Postgres answers: the gauges behind MpsOperationsStuck and
 * MpsPostgresUnreachable. One indexed query per interval per worker process.
 */
export function startProbes(deps: Deps, intervalMs = deps.config.PROBE_INTERVAL_MS): RunningProbes {
  const gauges = deps.metrics.probes();
  let running: Promise<void> | undefined;
  const probe = () => {
    running ??= oldestOpenAgeSeconds(deps.db)
      .then((age) => {
        gauges.oldestOpenOperationAge.set(age);
        gauges.postgresUp.set(1);
      })
      .catch((err: Error) => {
        gauges.postgresUp.set(0);
        deps.logger.warn({ err: err.message }, 'postgres probe failed');
      })
      .finally(() => {
        running = undefined;
      });
    return running;
  };
  void probe();
  const timer = setInterval(() => void probe(), intervalMs);
  timer.unref();
  return { stop: () => clearInterval(timer) };
}
