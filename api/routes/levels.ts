import { Router } from 'express';
import type { Deps } from '../../config/deps.js';

export function levelRoutes(_deps: Deps): Router {
  return Router();
}
