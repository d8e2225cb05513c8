import { randomBytes } from 'node:crypto';
import { expect } from 'chai';
import type { HttpResult } from './http.js';
import { newKey, type OperationJson, type OpOptions } from './money.js';
import type { TestSystem } from './system.js';

/** Requests of the card operations (replace, close, transfer) over the real API; tests assert statuses themselves. */

function headers(options: OpOptions): Record<string, string> {
  const h: Record<string, string> = {};
  if (options.idempotencyKey !== null) h['idempotency-key'] = options.idempotencyKey ?? newKey();
  const wait = options.wait ?? 10;
  if (wait !== false) h.prefer = `wait=${wait}`;
  return h;
}

export function replaceCard(sys: TestSystem, cardId: string, reason = 'lost', options: OpOptions & { key?: string } = {}): Promise<HttpResult<OperationJson>> {
  return sys.http.post<OperationJson>(`/v1/cards/${cardId}/replace`, { reason }, { key: options.key ?? sys.adminKey, headers: headers(options) });
}

export function closeCard(
  sys: TestSystem,
  cardId: string,
  body: { payout_method?: string; payout_reference?: string; reason?: string } = {},
  options: OpOptions & { key?: string } = {},
): Promise<HttpResult<OperationJson>> {
  const payload = { payout_method: 'bank_transfer', payout_reference: `bank-${randomBytes(6).toString('hex')}`, reason: 'member left', ...body };
  return sys.http.post<OperationJson>(`/v1/cards/${cardId}/close`, payload, { key: options.key ?? sys.adminKey, headers: headers(options) });
}

export function transfer(sys: TestSystem, body: { from_card_id: string; to_card_id: string; amount: string | number }, options: OpOptions & { key?: string } = {}): Promise<HttpResult<OperationJson>> {
  return sys.http.post<OperationJson>('/v1/transfers', body, { key: options.key ?? sys.adminKey, headers: headers(options) });
}

/** Waits (Prefer: wait) until the operation is terminal and returns it. */
export async function awaitOperation(sys: TestSystem, id: string, key = sys.adminKey): Promise<OperationJson> {
  for (let i = 0; i < 10; i++) {
    const res = await sys.http.get<OperationJson>(`/v1/operations/${id}`, { key, headers: { prefer: 'wait=10' } });
    expect(res.status, res.text).to.equal(200);
    if (res.body.status === 'succeeded' || res.body.status === 'failed') return res.body;
  }
  throw new Error(`operation ${id} still open`);
}
