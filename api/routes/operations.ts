import { Router, type Request, type Response } from 'express';
import type { Deps } from '../../app/deps.js';
import { AppError } from '../../domain/errors.js';
import { parse } from '../../domain/validate.js';
import { findOperation, isAtRest, isTerminal } from '../../db/queries/operations.js';
import type { AnnouncedOperation } from '../../db/operation-done.js';
import { OPERATION_KINDS } from '../../operations/index.js';
import { isRouted, routesOf } from '../../operations/kind.js';
import { acceptOperation, readOperation, type WaitFor } from '../../services/operations.js';
import { allow, principalOf } from '../middleware/auth.js';
import { rateLimit } from '../middleware/rate-limit.js';
import type { OperationWaiter } from '../operation-waiter.js';
import { operationJson } from '../serializers.js';
import { callerOf } from '../route-helpers.js';

/**
 * One POST route per operation kind (its path, roles, body and rate limit come from its module in
 * operations/), all answered the same way, and GET /v1/operations/:id.
 */
export function operationRoutes(deps: Deps, waiter: OperationWaiter): Router {
  const router = Router();
  const { config } = deps;
  // A wait ends at a terminal status, or at requires_approval (only a person moves it on).
  const waitFor: WaitFor = (op, ms) => waiter.waitFor<AnnouncedOperation>(op.id, ms, async () => (await findOperation(deps.db, op.id)) ?? op, (o) => isAtRest(o.status), op);

  // Internal kinds (follow-ups such as a transfer's legs) have no route (routesOf gives none): other operations hand on to them.
  for (const kind of OPERATION_KINDS.filter(isRouted)) {
    for (const route of routesOf(kind)) {
      const { path, roles, body, ratePerKeyPerMin } = route.http;
      const limits = ratePerKeyPerMin ? [rateLimit(deps, kind.type, ratePerKeyPerMin(config), (req) => req.principal?.keyId)] : [];
      router.post(path, allow(...roles), ...limits, async (req, res) => {
        const idempotencyKey = requireIdempotencyKey(req);
        const request = { params: req.params as Record<string, string>, body: parse(body, req.body) };
        const { op, created } = await acceptOperation(deps, callerOf(req), kind, route, idempotencyKey, request, preferredWait(req, res));
        send(res, op, created ? 'created' : 'replay');
      });
    }
  }

  router.get('/operations/:id', allow('merchant', 'member', 'app', 'admin'), async (req, res) => {
    send(res, await readOperation(deps, principalOf(req), String(req.params.id), preferredWait(req, res)), 'read');
  });

  /** With `Prefer: wait=N` (RFC 7240, capped at MAX_WAIT_S), the wait to apply, said back in Preference-Applied. */
  function preferredWait(req: Request, res: Response): { ms: number; waitFor: WaitFor } | undefined {
    const match = /(?:^|[,;\s])wait=(\d{1,4})(?:$|[,;\s])/i.exec(req.get('prefer') ?? '');
    if (!match) return undefined;
    const seconds = Math.min(Number(match[1]), config.MAX_WAIT_S);
    res.setHeader('Preference-Applied', `wait=${seconds}`);
    return { ms: seconds * 1000, waitFor };
  }

  return router;
}

/** POSTs answer 200 once terminal and 202 while open; GET always answers 200 with the current state. */
function send(res: Response, op: AnnouncedOperation, kind: 'created' | 'replay' | 'read') {
  res.setHeader('Location', `/v1/operations/${op.id}`);
  res.status(kind === 'read' || isTerminal(op.status) ? 200 : 202).json(operationJson(op));
}

function requireIdempotencyKey(req: Request): string {
  const key = req.get('idempotency-key');
  if (key === undefined || key.trim() === '') throw new AppError('IDEMPOTENCY_KEY_REQUIRED', 'Send an Idempotency-Key header (≤ 255 characters) with every operation');
  if (key.length > 255) throw new AppError('VALIDATION_ERROR', 'Idempotency-Key may be at most 255 characters', { issues: [{ field: 'Idempotency-Key', message: 'too long' }] });
  return key;
}
