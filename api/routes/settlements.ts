import { Router } from 'express';
import { z } from 'zod';
import type { Deps } from '../../app/deps.js';
import { listSettlements } from '../../db/queries/settlements.js';
import { settlementJson } from '../../jobs/settlement.js';
import { advanceSettlementBy, merchantSettlement, runSettlementDay, SETTLEMENT_STEPS } from '../../services/settlements.js';
import { allow, principalOf } from '../middleware/auth.js';
import { decodeCursor, page } from '../pagination.js';
import { callerOf, idParam } from '../route-helpers.js';
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

// New columns go last: a reader that takes columns by position keeps working.
const CSV_COLUMNS = ['id', 'merchant_id', 'period_date', 'period_start', 'period_end', 'gross_amount', 'refund_amount', 'fee_amount', 'net_amount', 'payment_count', 'refund_count', 'status', 'created_at', 'recharge_amount', 'recharge_count'] as const;

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

  /** Settles one local day now: 201 when it created settlements, 200 when the day was settled already. */
  router.post('/settlements/run', allow('admin'), async (req, res) => {
    const body = parse(runBody, req.body);
    const run = await runSettlementDay(deps, callerOf(req), body);
    res.status(run.created ? 201 : 200).json({ date: body.date, created: run.created, data: run.settlements.map(settlementJson) });
  });

  for (const step of SETTLEMENT_STEPS) {
    router.post(`/settlements/:id/${step}`, allow('admin'), async (req, res) => {
      res.json(settlementJson(await advanceSettlementBy(db, callerOf(req), idParam(req, 'id', 'settlement'), step)));
    });
  }

  router.get('/merchant/settlements', allow('merchant'), async (req, res) => {
    const q = parse(merchantQuery, req.query, 'query');
    const rows = await listSettlements(dbRead, { merchantId: principalOf(req).merchantId!, status: q.status, from: q.from, to: q.to, limit: q.limit, cursor: decodeCursor(q.cursor) });
    res.json(page(rows, q.limit, settlementJson));
  });

  router.get('/merchant/settlements/:id.csv', allow('merchant'), async (req, res) => {
    const s = settlementJson(await merchantSettlement(deps, callerOf(req), String(req.params.id)));
    res.setHeader('Content-Type', 'text/csv; charset=utf-8');
    res.setHeader('Content-Disposition', `attachment; filename="settlement-${s.period_date}.csv"`);
    res.send(`${CSV_COLUMNS.join(',')}\n${CSV_COLUMNS.map((c) => String(s[c])).join(',')}\n`);
  });

  router.get('/merchant/settlements/:id', allow('merchant'), async (req, res) => {
    res.json(settlementJson(await merchantSettlement(deps, callerOf(req), String(req.params.id))));
  });

  return router;
}
