import { Router } from 'express';
import { z } from 'zod';
import type { Deps } from '../../app/deps.js';
import { listAuditEvents, verifyAuditChain } from '../../db/queries/audit-events.js';
import { listAlerts } from '../../db/queries/risk-alerts.js';
import { resolveRiskAlert } from '../../services/risk.js';
import { allow } from '../middleware/auth.js';
import { decodeCursor, page } from '../pagination.js';
import { callerOf, idParam } from '../route-helpers.js';
import { fields, listQuery, parse } from '../../domain/validate.js';

const alertQuery = z.strictObject({ ...listQuery, status: z.enum(['open', 'resolved']).optional(), rule: z.string().max(64).optional() });
const resolveBody = z.strictObject({ note: z.string().max(500).optional() });
const auditQuery = z.strictObject({
  limit: listQuery.limit,
  cursor: z.string().regex(/^\d{1,18}$/, 'must be a cursor this API issued').optional(),
  object_type: z.string().max(64).optional(),
  object_id: z.string().max(100).optional(),
  action: z.string().max(64).optional(),
  from: fields.isoTime.optional(),
  to: fields.isoTime.optional(),
});

/** Admin routes of API.md "Platform": risk alerts and the audit trail. */
export function platformRoutes(deps: Deps): Router {
  const router = Router();
  // Alert and audit lists and the chain check read the replica when there is one.
  const { db, dbRead } = deps;

  router.get('/risk/alerts', allow('admin'), async (req, res) => {
    const q = parse(alertQuery, req.query, 'query');
    const rows = await listAlerts(dbRead, { status: q.status, rule: q.rule, limit: q.limit, cursor: decodeCursor(q.cursor) });
    res.json(page(rows, q.limit, ({ cursor_t: _cursor, ...a }: typeof rows[number] & { cursor_t?: string }) => ({ ...a, window_start: a.window_start.toISOString(), created_at: a.created_at.toISOString(), resolved_at: a.resolved_at?.toISOString() ?? null })));
  });

  router.post('/risk/alerts/:id/resolve', allow('admin'), async (req, res) => {
    const id = idParam(req, 'id', 'alert');
    const body = parse(resolveBody, req.body);
    const row = await resolveRiskAlert(db, callerOf(req), id, body.note ?? null);
    res.json({ ...row, window_start: row.window_start.toISOString() });
  });

  router.get('/audit/events', allow('admin'), async (req, res) => {
    const q = parse(auditQuery, req.query, 'query');
    const rows = await listAuditEvents(dbRead, { objectType: q.object_type, objectId: q.object_id, action: q.action, from: q.from, to: q.to, beforeId: q.cursor ? Number(q.cursor) : undefined, limit: q.limit });
    const more = rows.length > q.limit;
    const shown = more ? rows.slice(0, q.limit) : rows;
    res.json({ data: shown.map((r) => ({ ...r, created_at: r.created_at.toISOString() })), next_cursor: more ? String(shown[shown.length - 1]!.id) : null });
  });

  router.get('/audit/verify', allow('admin'), async (_req, res) => {
    res.json(await verifyAuditChain(dbRead));
  });

  return router;
}
