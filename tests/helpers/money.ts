import { randomUUID } from 'node:crypto';
import { expect } from 'chai';
import type { HttpResult } from './http.js';
import type { TestSystem } from './system.js';

/**
 * Helpers for the money path (payments, refunds, recharges, QR) over the real API, and SQL checks
 * of the ledgers. Each request helper returns the raw HTTP result so that tests assert statuses
 * and codes themselves; the `…Ok` variants assert success and return the operation.
 */

export interface OperationJson {
  id: string;
  type: 'payment' | 'refund' | 'recharge' | 'adjustment' | 'recharge_reversal';
  status: 'requires_approval' | 'queued' | 'processing' | 'succeeded' | 'failed' | 'rejected';
  created_at: string;
  completed_at: string | null;
  error: { code: string; message: string } | null;
  result: Record<string, any> | null;
}

export const newKey = (prefix = 'idem') => `${prefix}-${randomUUID()}`;

/** Headers of an operation request: an idempotency key (fresh unless given) and, unless wait is false, `Prefer: wait=N`. */
function opHeaders(options: { idempotencyKey?: string | null; wait?: number | false }): Record<string, string> {
  const headers: Record<string, string> = {};
  if (options.idempotencyKey !== null) headers['idempotency-key'] = options.idempotencyKey ?? newKey();
  const wait = options.wait ?? 10;
  if (wait !== false) headers.prefer = `wait=${wait}`;
  return headers;
}

export interface OpOptions {
  /** Idempotency-Key; a fresh one by default, null to send none. */
  idempotencyKey?: string | null;
  /** `Prefer: wait=N` seconds (default 10); false for no Prefer header. */
  wait?: number | false;
}

export function charge(
  sys: TestSystem,
  merchantKey: string,
  body: { qr: string; amount: string | number; payment_method?: string; external_order_id?: string; tag?: Record<string, unknown> },
  options: OpOptions = {},
): Promise<HttpResult<OperationJson>> {
  return sys.http.post<OperationJson>('/v1/payments', body, { key: merchantKey, headers: opHeaders(options) });
}

export function refund(
  sys: TestSystem,
  merchantKey: string,
  body: { original_tx_no: string; amount: string | number; reason?: string },
  options: OpOptions = {},
): Promise<HttpResult<OperationJson>> {
  return sys.http.post<OperationJson>('/v1/refunds', body, { key: merchantKey, headers: opHeaders(options) });
}

export function recharge(
  sys: TestSystem,
  cardId: string,
  body: { amount: string | number; payment_method?: string; payment_reference?: string },
  options: OpOptions & { key?: string } = {},
): Promise<HttpResult<OperationJson>> {
  return sys.http.post<OperationJson>(`/v1/cards/${cardId}/recharges`, { payment_method: 'cash', ...body }, { key: options.key ?? sys.adminKey, headers: opHeaders(options) });
}

/** Asserts a terminal success (200 with Prefer: wait) and returns the operation. */
export function expectSucceeded(res: HttpResult<OperationJson>, what = 'operation'): OperationJson {
  expect(res.status, `${what}: ${res.text}`).to.equal(200);
  expect(res.body.status, `${what}: ${res.text}`).to.equal('succeeded');
  expect(res.body.error).to.equal(null);
  expect(res.body.completed_at).to.be.a('string');
  return res.body;
}

/** Asserts a terminal business failure with `code` (200 with Prefer: wait) and returns the operation. */
export function expectFailed(res: HttpResult<OperationJson>, code: string, what = 'operation'): OperationJson {
  expect(res.status, `${what}: ${res.text}`).to.equal(200);
  expect(res.body.status, `${what}: ${res.text}`).to.equal('failed');
  expect(res.body.error?.code, `${what}: ${res.text}`).to.equal(code);
  expect(res.body.result).to.equal(null);
  expect(res.body.completed_at).to.be.a('string');
  return res.body;
}

/** Asserts a synchronous refusal in the API error shape. */
export function expectError(res: HttpResult, status: number, code: string): void {
  expect(res.status, res.text).to.equal(status);
  expect(res.body?.error?.code, res.text).to.equal(code);
  expect(res.body.error.request_id).to.be.a('string');
}

export async function rechargeOk(sys: TestSystem, cardId: string, amount: string | number, key = sys.adminKey): Promise<OperationJson> {
  return expectSucceeded(await recharge(sys, cardId, { amount }, { key }), `recharge ${amount}`);
}

/** A fresh QR for the card (for the member of `key` if it is a member token, else the owner or `memberId`). */
export async function issueQr(sys: TestSystem, cardId: string, key = sys.adminKey, body: { ttl_seconds?: number; member_id?: string } = {}): Promise<string> {
  const res = await sys.http.post(`/v1/cards/${cardId}/qr`, body, { key });
  expect(res.status, `issue QR: ${res.text}`).to.equal(201);
  expect(res.body.qr_plain).to.match(/^mpsq_[A-Za-z0-9_-]{43}$/);
  return res.body.qr_plain as string;
}

/** Issues a QR and charges with it, expecting success. */
export async function chargeOk(
  sys: TestSystem,
  merchantKey: string,
  cardId: string,
  amount: string | number,
  extra: { payment_method?: string; qrKey?: string } = {},
): Promise<OperationJson> {
  const qr = await issueQr(sys, cardId, extra.qrKey ?? sys.adminKey);
  const body: { qr: string; amount: string | number; payment_method?: string } = { qr, amount };
  if (extra.payment_method) body.payment_method = extra.payment_method;
  return expectSucceeded(await charge(sys, merchantKey, body), `charge ${amount}`);
}

export async function adjustPoints(sys: TestSystem, cardId: string, delta: number, reason = 'test adjustment'): Promise<HttpResult> {
  return sys.http.post(`/v1/cards/${cardId}/points-adjustments`, { delta, reason }, { key: sys.adminKey });
}

export async function adjustPointsOk(sys: TestSystem, cardId: string, delta: number): Promise<void> {
  const res = await adjustPoints(sys, cardId, delta);
  expect(res.status, `points adjustment: ${res.text}`).to.equal(201);
}

/** Polls GET /v1/operations/:id (no Prefer) until the operation is terminal. */
export async function pollOperation(sys: TestSystem, id: string, key: string, timeoutMs = 15_000): Promise<OperationJson> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const res = await sys.http.get<OperationJson>(`/v1/operations/${id}`, { key });
    expect(res.status, res.text).to.equal(200);
    if (res.body.status === 'succeeded' || res.body.status === 'failed') return res.body;
    if (Date.now() > deadline) throw new Error(`operation ${id} still ${res.body.status} after ${timeoutMs} ms`);
    await sleep(50);
  }
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** The card row (minor units) straight from Postgres. */
export async function cardRow(sys: TestSystem, cardId: string): Promise<{ balance_minor: number; points: number; level: number; status: string; type: string }> {
  const row = await sys.deps.db('member_cards').where({ id: cardId }).first('balance_minor', 'points', 'level', 'status', 'type');
  expect(row, `card ${cardId}`).to.not.equal(undefined);
  return { ...row, balance_minor: Number(row.balance_minor), points: Number(row.points), level: Number(row.level) };
}

/** Σ of the card's ledgers. */
export async function ledgerSums(sys: TestSystem, cardId: string): Promise<{ balance: number; points: number; minBalanceAfter: number | null; minPointsAfter: number | null }> {
  const { rows } = await sys.deps.db.raw<{ rows: { balance: string; points: string; min_balance_after: string | null; min_points_after: string | null }[] }>(
    `SELECT (SELECT coalesce(sum(delta_minor), 0) FROM balance_ledger WHERE card_id = :card) AS balance,
            (SELECT coalesce(sum(delta), 0) FROM point_ledger WHERE card_id = :card) AS points,
            (SELECT min(balance_after_minor) FROM balance_ledger WHERE card_id = :card) AS min_balance_after,
            (SELECT min(points_after) FROM point_ledger WHERE card_id = :card) AS min_points_after`,
    { card: cardId },
  );
  const r = rows[0]!;
  return {
    balance: Number(r.balance),
    points: Number(r.points),
    minBalanceAfter: r.min_balance_after === null ? null : Number(r.min_balance_after),
    minPointsAfter: r.min_points_after === null ? null : Number(r.min_points_after),
  };
}

/** The outbox events an operation wrote (its data names it), oldest first. */
export function outboxEventsOf(sys: TestSystem, operationId: string) {
  return sys.deps.db('events').whereRaw(`data->>'operation_id' = ?`, [operationId]).orderBy('created_at');
}

/**
 * Asserts balance = Σ balance_ledger and points = Σ point_ledger, no ledger row below 0, and
 * (when given) the expected balance (minor) and points. Returns the card row.
 */
export async function expectLedgersMatch(sys: TestSystem, cardId: string, expected: { balance?: number; points?: number } = {}) {
  const card = await cardRow(sys, cardId);
  const sums = await ledgerSums(sys, cardId);
  expect(card.balance_minor, 'balance = Σ balance_ledger').to.equal(sums.balance);
  expect(card.points, 'points = Σ point_ledger').to.equal(sums.points);
  expect(card.balance_minor).to.be.at.least(0);
  if (sums.minBalanceAfter !== null) expect(sums.minBalanceAfter, 'balance_after_minor ≥ 0').to.be.at.least(0);
  if (sums.minPointsAfter !== null) expect(sums.minPointsAfter, 'points_after ≥ 0').to.be.at.least(0);
  if (expected.balance !== undefined) expect(card.balance_minor, 'balance').to.equal(expected.balance);
  if (expected.points !== undefined) expect(card.points, 'points').to.equal(expected.points);
  return card;
}

/** The transactions rows of one operation. */
export async function transactionsOf(sys: TestSystem, operationId: string) {
  return sys.deps.db('transactions').where({ operation_id: operationId });
}

/** The card as the API shows it (admin view). */
export async function getCard(sys: TestSystem, cardId: string, key = sys.adminKey) {
  const res = await sys.http.get(`/v1/cards/${cardId}`, { key });
  expect(res.status, res.text).to.equal(200);
  return res.body as { balance: string; points: number; level: number; discount_rate: string; status: string };
}
