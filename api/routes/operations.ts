import { Router } from 'express';
import type { Deps } from '../../config/deps.js';

export function operationRoutes(_deps: Deps, _waiter: unknown): Router {
  return Router();
}
