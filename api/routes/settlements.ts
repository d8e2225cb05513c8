import { Router, type Request } from 'express';
import { z } from 'zod';
import type { Deps } from '../../app/deps.js';
import { AppError, notFound } from '../../domain/errors.js';
import { appendAudit } from '../../db/queries/audit-events.js';
import { advanceSettlement, findSettlement, listSettlements } from '../../db/queries/settlements.js';
import { settleDay, settlementJson } from '../../jobs/settlement.js';
import { isUuid } from '../../services/card-access.js';
import { allow, principalOf } from '../middleware/auth.js';
import { decodeCursor, page } from '../pagination.js';
import { fields, listQuery, parse } from '../../domain/validate.js';

const day = z
  .string()
  .regex(/^\d{4}-\d{2}-\d{2}$/, 'must be a date YYYY-MM-DD')
  // Date.parse rolls 2026-02-30 over to March; a real date survives the round trip unchanged.
  .refine((d) => !Number.isNaN(Date.parse(`${d}T00:00:00Z`)) && new Date(`${d}T00:00:00Z`).toISOString().slice(0, 10) === d, 'must be a real date');
const filters = { ...listQuery, status: z.enum(['pending', 'confirmed', 'paid']).optional(), from: day.optional(), to: day.optional() };
const adminQuery = z.strictObject({ ...filters, merchant_id: fields.uuid.optional() });
const merchantQuery = z.strictObject(filters);
const runBody = z.strictObject({ date: day, merchant_id: fields.uuid.optional() });

const CSV_COLUMNS = ['id', 'merchant_id', 'period_date', 'period_start', 'period_end', 'gross_amount', 'refund_amount', 'fee_amount', 'net_amount', 'payment_count', 'refund_count', 'status', 'created_at'] as const;

/** T+1 settlements: admins list, run and move them; merchants read their own (JSON and CSV). */
export function settlementRoutes(deps: Deps): Router {
  const router = Router();
  // Reads of settlements go to the replica when there is one; generating them (one INSERT … SELECT
  // that totals the day) and every read after a write here stay on the primary.
  const { db, dbRead } = deps;

  router.get('/settlements', allow('admin'), async (req, res) => {
    const q = parse(adminQuery, req.query, 'query');
    const rows = await listSettlements(dbRead, { merchantId: q.merchant_id, status: q.status, from: q.from, to: q.to, limit: q.limit, cursor: decodeCursor(q.cursor) });
    res.json(page(rows, q.limit, settlementJson));
  });

  /** Settles one local day now; idempotent per merchant and day (existing settlements are listed, not redone). */
  router.post('/settlements/run', allow('admin'), async (req, res) => {
    const body = parse(runBody, req.body);
    const p = principalOf(req);
    const created = await settleDay(deps, body.date, body.merchant_id, { actorType: 'api_key', actorId: p.keyId, role: p.role, requestId: req.id });
    const all = await listSettlements(db, { merchantId: body.merchant_id, from: body.date, to: body.date, limit: 10_000 });
    res.status(created.length ? 201 : 200).json({ date: body.date, created: created.length, data: all.map(settlementJson) });
  });

  for (const [path, from, action] of [
    ['confirm', 'pending', 'settlement.confirm'],
    ['mark-paid', 'confirmed', 'settlement.mark_paid'],
  ] as const) {
    router.post(`/settlements/:id/${path}`, allow('admin'), async (req, res) => {
      const id = String(req.params.id);
      if (!isUuid(id)) throw notFound('settlement');
      const p = principalOf(req);
      const row = await db.transaction(async (trx) => {
        const moved = await advanceSettlement(trx, id, from);
        if (moved) await appendAudit(trx, { actorType: 'api_key', actorId: p.keyId, role: p.role, action, objectType: 'settlement', objectId: id, requestId: req.id, ip: req.ip });
        return moved;
      });
      if (!row) {
        const existing = await findSettlement(db, id);
        if (!existing) throw notFound('settlement');
        throw new AppError('CONFLICT', `Only a ${from} settlement can be moved by ${path}; this one is ${existing.status}`);
      }
      res.json(settlementJson(row));
    });
  }

  router.get('/merchant/settlements', allow('merchant'), async (req, res) => {
    const q = parse(merchantQuery, req.query, 'query');
    const rows = await listSettlements(dbRead, { merchantId: principalOf(req).merchantId!, status: q.status, from: q.from, to: q.to, limit: q.limit, cursor: decodeCursor(q.cursor) });
    res.json(page(rows, q.limit, settlementJson));
  });

  const ownSettlement = async (req: Request, id: string) => {
    const row = isUuid(id) ? await findSettlement(dbRead, id) : undefined;
    if (!row || row.merchant_id !== principalOf(req).merchantId) throw notFound('settlement');
    return row;
  };

  router.get('/merchant/settlements/:id.csv', allow('merchant'), async (req, res) => {
    const s = settlementJson(await ownSettlement(req, String(req.params.id)));
    res.setHeader('Content-Type', 'text/csv; charset=utf-8');
    res.setHeader('Content-Disposition', `attachment; filename="settlement-${s.period_date}.csv"`);
    res.send(`${CSV_COLUMNS.join(',')}\n${CSV_COLUMNS.map((c) => String(s[c])).join(',')}\n`);
  });

  router.get('/merchant/settlements/:id', allow('merchant'), async (req, res) => {
    res.json(settlementJson(await ownSettlement(req, String(req.params.id))));
  });

  return router;
}
