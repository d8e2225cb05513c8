import { Router } from 'express';
import type { Deps } from '../../config/deps.js';

export function qrRoutes(_deps: Deps): Router {
  return Router();
}
