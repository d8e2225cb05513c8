import { runRelayOutbox } from '../../jobs/relay-outbox.js';
import { sleep } from './money.js';
import type { TestSystem } from './system.js';

export interface RelayLoop {
  errors: Error[];
  stop(): Promise<void>;
}

/** runRelayOutbox every `intervalMs`, like the scheduler's RELAY_CRON tick: turns events into deliveries. */
export function startRelayLoop(sys: TestSystem, intervalMs = 100): RelayLoop {
  let stopped = false;
  const errors: Error[] = [];
  const loop = (async () => {
    while (!stopped) {
      try {
        await runRelayOutbox(sys.deps);
      } catch (err) {
        errors.push(err as Error);
      }
      await sleep(intervalMs);
    }
  })();
  return {
    errors,
    stop: async () => {
      stopped = true;
      await loop;
    },
  };
}
