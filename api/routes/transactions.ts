import { Router } from 'express';
import { z } from 'zod';
import type { Deps } from '../../app/deps.js';
import { forbidden, notFound } from '../../domain/errors.js';
import { listTransactions, type TransactionFilter } from '../../db/queries/transactions.js';
import { cardFor, isUuid } from '../../services/card-access.js';
import { allow, principalOf } from '../middleware/auth.js';
import { decodeCursor, page } from '../pagination.js';
import { transactionJson } from '../serializers.js';
import { TRANSACTION_TYPES } from '../../operations/index.js';
import { fields, listQuery, parse } from '../../domain/validate.js';

const baseQuery = { ...listQuery, type: z.enum(TRANSACTION_TYPES as [string, ...string[]]).optional(), from: fields.isoTime.optional(), to: fields.isoTime.optional() };
const memberQuery = z.strictObject(baseQuery);
const merchantQuery = z.strictObject({ ...baseQuery, status: z.enum(['completed', 'partially_refunded', 'refunded']).optional() });

export function transactionRoutes(deps: Deps): Router {
  const router = Router();
  const { db, dbRead } = deps;

  async function list(filter: Omit<TransactionFilter, 'limit' | 'cursor'>, query: z.output<typeof merchantQuery>, forMerchant: boolean) {
    // Lists read the replica when there is one (DATABASE_READ_URL): they may trail the primary by the replication lag.
    const rows = await listTransactions(dbRead, { ...filter, type: query.type, status: query.status, from: query.from, to: query.to, limit: query.limit, cursor: decodeCursor(query.cursor) });
    return page(rows, query.limit, (row) => transactionJson(row, forMerchant));
  }

  router.get('/members/:id/transactions', allow('admin', 'app', 'member'), async (req, res) => {
    const principal = principalOf(req);
    const memberId = String(req.params.id);
    if (!isUuid(memberId)) throw notFound('member');
    if (principal.role === 'member' && principal.memberId !== memberId) throw notFound('member');
    const query = parse(memberQuery, req.query, 'query');
    res.json(await list({ memberId }, query, false));
  });

  router.get('/cards/:id/transactions', allow('admin', 'app', 'member'), async (req, res) => {
    const { card } = await cardFor(db, principalOf(req), String(req.params.id), 'read');
    const query = parse(memberQuery, req.query, 'query');
    res.json(await list({ cardId: card.id }, query, false));
  });

  router.get('/merchant/transactions', allow('merchant'), async (req, res) => {
    const principal = principalOf(req);
    if (!principal.merchantId) throw forbidden();
    const query = parse(merchantQuery, req.query, 'query');
    res.json(await list({ merchantId: principal.merchantId }, query, true));
  });

  return router;
}
