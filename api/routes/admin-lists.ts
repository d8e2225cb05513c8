import { Router } from 'express';
import type { Deps } from '../../app/deps.js';
import type { ListedOperation } from '../../db/queries/admin-lists.js';
import { cardRateMilli } from '../../domain/card-rate.js';
import { formatMinor } from '../../domain/money.js';
import { findCards, findMerchants, findOperations, findTransactions, updateMerchant } from '../../services/admin-lists.js';
import { allow, principalOf } from '../middleware/auth.js';
import { decodeCursor, page } from '../pagination.js';
import { callerOf, idParam } from '../route-helpers.js';
import { cardListQuery, merchantListQuery, operationListQuery, transactionListQuery, updateMerchantBody } from '../schemas/admin-lists.js';
import { cardJson, iso, operationJson, transactionJson } from '../serializers.js';
import { parse } from '../../domain/validate.js';
import { merchantJson } from '../views.js';

/** An operation as the on-call admin sees it: the API's operation object and where it stands in its queue. */
function listedOperationJson(op: ListedOperation) {
  return {
    ...operationJson(op),
    merchant_id: op.merchant_id,
    member_id: op.member_id,
    card_id: op.card_id,
    partition: op.partition,
    amount: op.amount_minor === null ? null : formatMinor(op.amount_minor),
    payment_method: op.payment_method,
    original_tx_no: op.original_tx_no,
    actor_role: op.actor_role,
    attempts: op.attempts,
    enqueue_count: op.enqueue_count,
    started_at: iso(op.started_at),
  };
}

/** API.md "Directory, keys and reports": the admin's lists across tenants, and merchant corrections. */
export function adminListRoutes(deps: Deps): Router {
  const router = Router();

  router.get('/merchants', allow('admin'), async (req, res) => {
    const q = parse(merchantListQuery, req.query, 'query');
    const rows = await findMerchants(deps, principalOf(req), { status: q.status, q: q.q, limit: q.limit, cursor: decodeCursor(q.cursor) });
    res.json(page(rows, q.limit, merchantJson));
  });

  router.patch('/merchants/:id', allow('admin'), async (req, res) => {
    const merchantId = idParam(req, 'id', 'merchant');
    const changes = parse(updateMerchantBody, req.body);
    res.json(merchantJson(await updateMerchant(deps, callerOf(req), { merchantId, changes })));
  });

  router.get('/cards', allow('admin'), async (req, res) => {
    const q = parse(cardListQuery, req.query, 'query');
    const { cards, levels } = await findCards(deps, principalOf(req), { memberId: q.member_id, status: q.status, type: q.type, limit: q.limit, cursor: decodeCursor(q.cursor) });
    // With member_id, each card says what that member is to it (owner, admin, member, viewer).
    res.json(page(cards, q.limit, (c) => ({ ...cardJson(c, cardRateMilli(c, levels), deps.config), ...(c.binding_role === undefined ? {} : { role: c.binding_role }) })));
  });

  router.get('/transactions', allow('admin'), async (req, res) => {
    const q = parse(transactionListQuery, req.query, 'query');
    const rows = await findTransactions(deps, principalOf(req), {
      merchantId: q.merchant_id,
      cardId: q.card_id,
      memberId: q.member_id,
      type: q.type,
      status: q.status,
      from: q.from,
      to: q.to,
      txNo: q.tx_no,
      limit: q.limit,
      cursor: decodeCursor(q.cursor),
    });
    res.json(page(rows, q.limit, (row) => transactionJson(row, false)));
  });

  router.get('/operations', allow('admin'), async (req, res) => {
    const q = parse(operationListQuery, req.query, 'query');
    const rows = await findOperations(deps, principalOf(req), { status: q.status, type: q.type, olderThanS: q.older_than_s, limit: q.limit, cursor: decodeCursor(q.cursor, 'text') });
    res.json(page(rows, q.limit, listedOperationJson));
  });

  return router;
}
