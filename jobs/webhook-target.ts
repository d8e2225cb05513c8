import { lookup } from 'node:dns/promises';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { isIP, type LookupFunction } from 'node:net';
import { AppError } from '../domain/errors.js';
import { isPrivateAddress, webhookUrlProblem } from '../domain/webhook-url.js';

/** A webhook URL with the one address it was judged by: the request connects to exactly that address. */
export interface WebhookTarget {
  url: URL;
  address: string;
  family: 4 | 6;
}

const refused = (message: string) => new AppError('VALIDATION_ERROR', `url ${message}`, { issues: [{ field: 'url', message }] });

/**
 * Judges a webhook URL and resolves its host once. Unless insecure targets are allowed, every
 * address the name resolves to must be public, and the address kept is the one connected to, so
 * a DNS answer that changes between the check and the request (rebinding) reaches nothing new.
 */
export async function resolveWebhookTarget(raw: string, allowInsecure: boolean): Promise<WebhookTarget> {
  const problem = webhookUrlProblem(raw, allowInsecure);
  if (problem) throw refused(problem);
  const url = new URL(raw);
  const host = url.hostname.replace(/^\[|\]$/g, '');
  const literal = isIP(host);
  const addresses = literal ? [{ address: host, family: literal }] : await lookup(host, { all: true, verbatim: true }).catch(() => []);
  if (!addresses.length) throw refused('host does not resolve');
  if (!allowInsecure && addresses.some((a) => isPrivateAddress(a.address))) throw refused('resolves to a private or loopback address');
  const first = addresses[0]!;
  return { url, address: first.address, family: first.family === 6 ? 6 : 4 };
}

export interface PostResult {
  status: number;
  body: string;
}

/** POSTs `body` to the target's pinned address (TLS still checks the URL's host name) and reads at most `capBytes` of the answer. */
export function postToTarget(target: WebhookTarget, body: string, headers: Record<string, string>, timeoutMs: number, capBytes: number): Promise<PostResult> {
  const pinned: LookupFunction = (_host, options, callback) => {
    if (options.all) callback(null, [{ address: target.address, family: target.family }]);
    else callback(null, target.address, target.family);
  };
  const send = target.url.protocol === 'https:' ? httpsRequest : httpRequest;
  return new Promise((resolve, reject) => {
    const req = send(target.url, { method: 'POST', headers: { ...headers, 'content-length': String(Buffer.byteLength(body)) }, lookup: pinned, signal: AbortSignal.timeout(timeoutMs) }, (res: IncomingMessage) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (chunk: Buffer) => {
        if (size < capBytes) chunks.push(chunk);
        size += chunk.length;
        if (size >= capBytes) res.destroy();
      });
      const done = () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') });
      res.on('end', done);
      res.on('close', done);
      res.on('error', done);
    });
    req.on('error', (err: Error & { cause?: unknown }) => reject(err.name === 'AbortError' ? Object.assign(new Error(`timeout after ${timeoutMs} ms`), { name: 'TimeoutError' }) : err));
    req.end(body);
  });
}
