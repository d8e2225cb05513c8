import { Router } from 'express';
import type { Deps } from '../../config/deps.js';

export function merchantRoutes(_deps: Deps): Router {
  return Router();
}
