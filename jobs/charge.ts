import type { Deps } from '../config/deps.js';
export async function runCharge(_deps: Deps, _payload: unknown): Promise<unknown> {
  return undefined;
}
