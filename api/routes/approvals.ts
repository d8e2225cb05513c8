import { Router, type Request } from 'express';
import type { Deps } from '../../app/deps.js';
import { notFound } from '../../domain/errors.js';
import { parse } from '../../domain/validate.js';
import { isTerminal } from '../../db/queries/operations.js';
import { decideApproval, type ApprovalDecision } from '../../services/approvals.js';
import { allow } from '../middleware/auth.js';
import { callerOf } from '../route-helpers.js';
import { reasonBody } from '../schemas/common.js';
import { operationJson } from '../serializers.js';

const OPERATION_ID = /^op_[0-9a-f]{32}$/;

/** POST /v1/operations/:id/approve · /reject: the second admin key's decision on an operation held for approval. */
export function approvalRoutes(deps: Deps): Router {
  const router = Router();
  const operationId = (req: Request) => {
    const id = String(req.params.id);
    if (!OPERATION_ID.test(id)) throw notFound('operation');
    return id;
  };

  for (const decision of ['approve', 'reject'] as const satisfies readonly ApprovalDecision[]) {
    router.post(`/operations/:id/${decision}`, allow('admin'), async (req, res) => {
      const { reason } = parse(reasonBody, req.body);
      const op = await decideApproval(deps, callerOf(req), operationId(req), decision, reason);
      // Approved: queued, 202 like any accepted operation (GET it, with Prefer: wait, for the outcome); rejected: terminal, 200.
      res.setHeader('Location', `/v1/operations/${op.id}`);
      res.status(isTerminal(op.status) ? 200 : 202).json(operationJson(op));
    });
  }
  return router;
}
