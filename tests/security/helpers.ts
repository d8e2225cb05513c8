import { randomBytes } from 'node:crypto';
import { createServer, type Server, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { expect } from 'chai';
import { ConfigError, loadConfig } from '../../config/env.js';
import { newApiKey } from '../../domain/tokens.js';
import type { HttpResult } from '../helpers/http.js';
import { newKey } from '../helpers/money.js';
import type { TestSystem } from '../helpers/system.js';

/**
 * Shared helpers of the security regression suite (tests/security). Everything else comes from
 * tests/helpers: these are only what those do not offer.
 */

/** `Authorization: Basic …` for Bull Board. */
export { basicAuth as basic } from '../helpers/browser.js';

/** Headers of an operation request: a fresh Idempotency-Key and `Prefer: wait=N`. */
export const opHeaders = (wait = 10): Record<string, string> => ({ 'idempotency-key': newKey('sec'), prefer: `wait=${wait}` });

/**
 * POSTs `raw` exactly as written, as application/json: for bodies whose own characters matter
 * (an amount written `1e2` must reach the server as `1e2`, not as JSON.stringify(100)).
 */
export function postRaw(sys: TestSystem, path: string, raw: string, key: string, headers: Record<string, string> = {}): Promise<HttpResult> {
  return sys.http.request('POST', path, undefined, { key, raw, headers: { 'content-type': 'application/json', ...headers } });
}

/** Asserts status and error code, with the whole answer in the message. */
export function expectCode(res: HttpResult, status: number, code: string, what = ''): void {
  const label = `${what ? `${what}: ` : ''}${res.status} ${res.text}`;
  expect(res.status, label).to.equal(status);
  expect(res.body?.error?.code, label).to.equal(code);
}

/** The error problems of loadConfig(env), failing if it does not throw a ConfigError. */
export function configProblems(env: Record<string, string | undefined>): { message: string; problems: string[] } {
  try {
    loadConfig(env);
  } catch (err) {
    expect(err, String(err)).to.be.instanceOf(ConfigError);
    return { message: (err as ConfigError).message, problems: (err as ConfigError).problems };
  }
  return expect.fail(`loadConfig should have thrown for ${JSON.stringify(Object.keys(env))}`);
}

/** A complete, valid production environment (each test takes away or spoils one variable). */
export function productionEnv(extra: Record<string, string | undefined> = {}): Record<string, string | undefined> {
  return {
    NODE_ENV: 'production',
    DATABASE_URL: 'postgres://mps:mps@127.0.0.1:5432/mps',
    REDIS_URL: 'redis://127.0.0.1:6379',
    MPS_ADMIN_KEY: newApiKey('admin').key,
    METRICS_TOKEN: randomBytes(24).toString('hex'),
    ENCRYPTION_KEY: randomBytes(32).toString('hex'),
    ...extra,
  };
}

export { startRelayLoop } from '../helpers/relay.js';

/**
 * A plain TCP listener on 127.0.0.1 that counts the connections it gets and closes them: stands
 * for "anything on loopback". If MPS opens even a TCP connection to it (e.g. an https:// webhook
 * attempt), `connections` goes up.
 */
export async function startTcpCounter(): Promise<{ port: number; connections: () => number; close(): Promise<void> }> {
  let count = 0;
  const sockets = new Set<Socket>();
  const server: Server = createServer((socket) => {
    count += 1;
    sockets.add(socket);
    socket.on('error', () => undefined);
    socket.on('close', () => sockets.delete(socket));
    socket.destroy();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  return {
    port: (server.address() as AddressInfo).port,
    connections: () => count,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** Luhn check over all digits (the last one is the check digit). */
export function luhnValid(digits: string): boolean {
  if (!/^\d+$/.test(digits)) return false;
  let sum = 0;
  for (let i = 0; i < digits.length; i += 1) {
    let d = Number(digits[digits.length - 1 - i]);
    if (i % 2 === 1) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
  }
  return sum % 10 === 0;
}
