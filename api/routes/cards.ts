import { Router } from 'express';
import type { Deps } from '../../config/deps.js';

export function cardRoutes(_deps: Deps): Router {
  return Router();
}
