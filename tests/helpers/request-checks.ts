import { randomBytes } from 'node:crypto';
import { expect } from 'chai';
import type { HttpResult } from './http.js';
import type { TestSystem } from './system.js';

/** Asserts the API.md error shape with this status and code (and, if given, a message matching `message`). */
export function expectError(res: HttpResult, status: number, code: string, message?: RegExp | string): void {
  expect(res.status, JSON.stringify(res.body)).to.equal(status);
  expect(res.body?.error?.code, JSON.stringify(res.body)).to.equal(code);
  expect(res.body.error.request_id).to.equal(res.headers.get('x-request-id'));
  if (message !== undefined) expect(res.body.error.message).to.match(typeof message === 'string' ? new RegExp(message) : message);
}

export const unknownKey = (prefix = 'mps_admin_') => `${prefix}${randomBytes(32).toString('base64url')}`;

/**
 * Registers the tests every JSON route shares: a body over BODY_LIMIT, a non-JSON content type,
 * malformed JSON, a JSON array instead of an object, and a missing or unknown key. Each one is
 * refused with its code, and `state()` (row counts, a re-read object) is the same afterwards.
 */
export function itRefusesMalformedRequests(target: {
  sys: () => TestSystem;
  method: 'POST' | 'PUT' | 'DELETE';
  path: () => string;
  key: () => string;
  state: () => Promise<unknown>;
}): void {
  const json = { 'content-type': 'application/json' };
  const cases: { title: string; raw?: string; headers?: Record<string, string>; key?: string | null; status: number; code: string }[] = [
    { title: 'a body over BODY_LIMIT with 413', raw: JSON.stringify({ name: 'x'.repeat(40 * 1024) }), headers: json, status: 413, code: 'PAYLOAD_TOO_LARGE' },
    { title: 'a non-JSON content type with 415', raw: 'name=x', headers: { 'content-type': 'application/x-www-form-urlencoded' }, status: 415, code: 'UNSUPPORTED_MEDIA_TYPE' },
    { title: 'text/plain JSON with 415', raw: '{}', headers: { 'content-type': 'text/plain' }, status: 415, code: 'UNSUPPORTED_MEDIA_TYPE' },
    { title: 'malformed JSON with 400', raw: '{"name": ', headers: json, status: 400, code: 'VALIDATION_ERROR' },
    { title: 'a JSON array body with 400', raw: '[]', headers: json, status: 400, code: 'VALIDATION_ERROR' },
    { title: 'a missing key with 401', raw: '{}', headers: json, key: null, status: 401, code: 'UNAUTHENTICATED' },
    { title: 'an unknown key with 401', raw: '{}', headers: json, key: unknownKey(), status: 401, code: 'UNAUTHENTICATED' },
  ];
  for (const c of cases) {
    if (target.method === 'DELETE' && c.code !== 'UNAUTHENTICATED') continue;
    it(`refuses ${c.title} and changes nothing`, async () => {
      const sys = target.sys();
      const before = await target.state();
      const key = c.key === undefined ? target.key() : (c.key ?? undefined);
      const res = await sys.http.request(target.method, target.path(), undefined, target.method === 'DELETE' ? { key } : { key, raw: c.raw, headers: c.headers });
      expectError(res, c.status, c.code);
      expect(await target.state()).to.deep.equal(before);
    });
  }
}
