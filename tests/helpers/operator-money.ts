import { expect } from 'chai';
import { createApiKey } from '../../db/queries/api-keys.js';
import type { HttpResult } from './http.js';
import { newKey, type OperationJson } from './money.js';
import type { TestSystem } from './system.js';

/**
 * Helpers for the operator money tools over the real API (till top-ups, adjustments with their
 * approvals, recharge reversals, card limits). Like tests/helpers/money.ts, each returns the raw
 * HTTP result; tests assert statuses and codes themselves.
 */

interface OpOptions {
  key?: string;
  idempotencyKey?: string;
  /** `Prefer: wait=N` seconds (default 10); false for none. */
  wait?: number | false;
}

function headers(options: OpOptions): Record<string, string> {
  const h: Record<string, string> = { 'idempotency-key': options.idempotencyKey ?? newKey() };
  const wait = options.wait ?? 10;
  if (wait !== false) h.prefer = `wait=${wait}`;
  return h;
}

/** POST /v1/recharges: a merchant tops up the card of `qr` at the till. */
export function tillRecharge(sys: TestSystem, merchantKey: string, body: { qr: string; amount: string | number; payment_method?: string; tag?: Record<string, unknown> }, options: OpOptions = {}): Promise<HttpResult<OperationJson>> {
  return sys.http.post<OperationJson>('/v1/recharges', { payment_method: 'cash', ...body }, { key: merchantKey, headers: headers(options) });
}

/** POST /v1/cards/:id/adjustments (admin by default). */
export function adjust(sys: TestSystem, cardId: string, amount: string | number, options: OpOptions & { reason?: string } = {}): Promise<HttpResult<OperationJson>> {
  return sys.http.post<OperationJson>(`/v1/cards/${cardId}/adjustments`, { amount, reason: options.reason ?? 'test correction' }, { key: options.key ?? sys.adminKey, headers: headers(options) });
}

/** POST /v1/operations/:id/approve or /reject with `key`. */
export function decide(sys: TestSystem, operationId: string, decision: 'approve' | 'reject', key: string, reason?: string): Promise<HttpResult<OperationJson>> {
  return sys.http.post<OperationJson>(`/v1/operations/${operationId}/${decision}`, reason === undefined ? {} : { reason }, { key });
}

/** POST /v1/cards/:id/recharge-reversals (admin by default). */
export function reverseRecharge(sys: TestSystem, cardId: string, body: { original_tx_no: string; amount: string | number; reason?: string }, options: OpOptions = {}): Promise<HttpResult<OperationJson>> {
  return sys.http.post<OperationJson>(`/v1/cards/${cardId}/recharge-reversals`, { reason: 'chargeback', ...body }, { key: options.key ?? sys.adminKey, headers: headers(options) });
}

/** PUT /v1/cards/:id/limits (admin by default). */
export function putLimits(sys: TestSystem, cardId: string, body: Record<string, unknown>, key = sys.adminKey): Promise<HttpResult> {
  return sys.http.put(`/v1/cards/${cardId}/limits`, body, { key });
}

export async function putLimitsOk(sys: TestSystem, cardId: string, body: Record<string, unknown>, key = sys.adminKey) {
  const res = await putLimits(sys, cardId, body, key);
  expect(res.status, `limits: ${res.text}`).to.equal(200);
  return res.body;
}

/** A second admin key (four eyes: the approver). */
export async function secondAdminKey(sys: TestSystem, name = 'approver'): Promise<string> {
  return (await createApiKey(sys.deps.db, { role: 'admin', name })).key;
}

/** GET /v1/operations/:id with `Prefer: wait=N`. */
export function awaitOperation(sys: TestSystem, id: string, key = sys.adminKey, wait = 10): Promise<HttpResult<OperationJson>> {
  return sys.http.get<OperationJson>(`/v1/operations/${id}`, { key, headers: { prefer: `wait=${wait}` } });
}
