import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { performance } from 'node:perf_hooks';

/**
 * A local webhook receiver on 127.0.0.1 that records every request with its raw body (bytes
 * joined before decoding, so signatures are checked over exactly what was sent) and answers as
 * told: a status per request index, or 'hang' to never answer.
 */

export type Answer = number | 'hang';

export interface ReceivedRequest {
  /** performance.now() when the body had fully arrived: for measuring gaps between attempts. */
  at: number;
  method: string;
  path: string;
  headers: IncomingHttpHeaders;
  raw: string;
  /** The parsed body (undefined if it was not JSON). */
  body: any;
  answer: Answer;
}

export interface TestReceiver {
  url: string;
  requests: ReceivedRequest[];
  /** Changes how the next requests are answered (index counts every request received so far). */
  answerWith(answer: Answer | ((index: number, req: ReceivedRequest) => Answer)): void;
  /** Resolves once at least `n` requests arrived (optionally only those matching `filter`). */
  waitForRequests(n: number, options?: { timeoutMs?: number; filter?: (r: ReceivedRequest) => boolean }): Promise<ReceivedRequest[]>;
  close(): Promise<void>;
}

/** Fails the first `times` requests with `status`, then answers 200. */
export const failFirst =
  (times: number, status = 500) =>
  (index: number): Answer =>
    index < times ? status : 200;

export async function startReceiver(initial: Answer | ((index: number, req: ReceivedRequest) => Answer) = 200): Promise<TestReceiver> {
  let answer = initial;
  const requests: ReceivedRequest[] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const raw = Buffer.concat(chunks).toString('utf8');
      let body: unknown;
      try {
        body = JSON.parse(raw);
      } catch {
        body = undefined;
      }
      const record: ReceivedRequest = { at: performance.now(), method: req.method ?? '', path: req.url ?? '', headers: req.headers, raw, body, answer: 200 };
      const index = requests.length;
      record.answer = typeof answer === 'function' ? answer(index, record) : answer;
      requests.push(record);
      if (record.answer === 'hang') return; // keep the socket open and never answer
      res.writeHead(record.answer, { 'content-type': 'text/plain' }).end(`answer ${record.answer}`);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hooks/mps`;

  return {
    url,
    requests,
    answerWith(next) {
      answer = next;
    },
    async waitForRequests(n, options = {}) {
      const { timeoutMs = 15_000, filter = () => true } = options;
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const matching = requests.filter(filter);
        if (matching.length >= n) return matching;
        if (Date.now() > deadline) throw new Error(`receiver got ${matching.length} matching requests (of ${requests.length}), expected ${n}, within ${timeoutMs} ms`);
        await new Promise((r) => setTimeout(r, 20));
      }
    },
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** The README receiver (docs/webhook-receiver.mjs), loaded as merchants would copy it, with types. */
export interface ReadmeReceiverModule {
  verify(header: string | undefined, rawBody: string, secret: string, nowS?: number): boolean;
  receiver(secret: string, onEvent: (event: any) => void): Server;
}

export const README_RECEIVER_URL = new URL('../../docs/webhook-receiver.mjs', import.meta.url);

export async function loadReadmeReceiver(): Promise<ReadmeReceiverModule> {
  return (await import(README_RECEIVER_URL.href)) as ReadmeReceiverModule;
}

/** Polls `check` until it returns something other than undefined/false. */
export async function waitFor<T>(what: string, check: () => Promise<T | undefined | false>, timeoutMs = 15_000, intervalMs = 50): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}
