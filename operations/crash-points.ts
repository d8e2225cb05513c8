import type { Config } from '../config/env.js';

export type CrashPoint = 'before-commit' | 'after-commit-before-ack' | 'after-commit-before-follow-ups';

let passes = 0;

/**
 * Fault injection for the fault suite: with MPS_CRASH_AT=<point>@<n> the process kills itself
 * (SIGKILL, no cleanup) the n-th time it passes that point, so the hardest windows — inside the
 * transaction before commit, between commit and job acknowledgement, and between the commit of an
 * operation that handed on (a transfer's debit) and the enqueue of its follow-ups — are hit every run.
 */
export function crashPoint(config: Config, point: CrashPoint): void {
  if (!config.MPS_CRASH_AT) return;
  const [name, nth] = config.MPS_CRASH_AT.split('@');
  if (name === point && ++passes === Number(nth)) process.kill(process.pid, 'SIGKILL');
}
