import type { Deps } from '../config/deps.js';
export async function runRefund(_deps: Deps, _payload: unknown): Promise<unknown> {
  return undefined;
}
