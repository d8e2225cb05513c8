import { Router } from 'express';
import type { Deps } from '../../config/deps.js';

export function transactionRoutes(_deps: Deps): Router {
  return Router();
}
