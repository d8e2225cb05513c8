import { createHmac, timingSafeEqual } from 'node:crypto';
import { createServer } from 'node:http';

// Verifies MPS-Signature (t=…,v1=…[,v1=…]) over the raw body and rejects anything older than 300 s.
export function verify(header = '', rawBody, secret, nowS = Math.floor(Date.now() / 1000)) {
  const parts = header.split(',').map((p) => p.split('='));
  const t = Number(parts.find(([k]) => k === 't')?.[1]);
  if (!Number.isInteger(t) || Math.abs(nowS - t) > 300) return false;
  const expected = createHmac('sha256', secret).update(`${t}.${rawBody}`).digest();
  return parts.some(([k, v]) => k === 'v1' && /^[0-9a-f]{64}$/.test(v ?? '') && timingSafeEqual(Buffer.from(v, 'hex'), expected));
}

export const receiver = (secret, onEvent) => createServer((req, res) => {
  const chunks = [];
  req.on('data', (c) => chunks.push(c)).on('end', () => {
    const raw = Buffer.concat(chunks).toString('utf8'); // whole body first: a character may span chunks
    if (!verify(req.headers['mps-signature'], raw, secret)) return res.writeHead(400).end('bad signature');
    onEvent(JSON.parse(raw)); // dedupe on event.id: deliveries are at least once
    res.writeHead(200).end('ok');
  });
});
