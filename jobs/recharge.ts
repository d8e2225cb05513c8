import type { Deps } from '../config/deps.js';
export async function runRecharge(_deps: Deps, _payload: unknown): Promise<unknown> {
  return undefined;
}
