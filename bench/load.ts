import { randomUUID } from 'node:crypto';
import { Agent, request } from 'node:http';
import type { Preload } from './preload.js';

export type Action = 'charge' | 'refund' | 'recharge';

export interface Sample {
  action: Action;
  startS: number;
  /** Time to the POST's answer (202 in poll mode; the final answer with Prefer: wait). */
  acceptMs: number;
  /** Submit to terminal status. */
  finalMs: number;
  /** `--qr fresh` charges: the member app's POST /v1/cards/:id/qr before the charge (ms); the charge's own times follow it. */
  qrMs?: number;
  /** 'succeeded', a business error code, or an HTTP/network error label. */
  outcome: string;
}

export interface LoadOptions {
  /** The web processes; requests go to them in turn, as a round-robin load balancer would send them. */
  urls: string[];
  preload: Preload;
  /** Cards the load uses (1-based numbers); all when undefined. */
  hotCards?: number[];
  mix: Record<Action, number>;
  /** 'wait': POST with Prefer: wait; 'poll': POST, then GET the operation until terminal. */
  mode: 'wait' | 'poll';
  /**
   * 'pre': charges present the preloaded QR tokens. 'fresh': the till flow, where for each charge
   * the member app (the app key) first issues a new QR for a (card, member) that no other
   * terminal is paying with at that moment (a second issue would supersede the first).
   */
  qr?: 'pre' | 'fresh';
}

// Plain node:http with kept-alive connections: the generator shares the machine with the engine,
// and this costs it less CPU per request than fetch().
const agent = new Agent({ keepAlive: true, maxSockets: Infinity });

export interface Answer<T> {
  status: number;
  body: T;
}

export function call<T>(url: string, method: 'GET' | 'POST', headers: Record<string, string>, body?: unknown): Promise<Answer<T>> {
  const payload = body === undefined ? undefined : JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = request(url, { method, agent, headers: payload === undefined ? headers : { ...headers, 'content-length': String(Buffer.byteLength(payload)) } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        try {
          resolve({ status: res.statusCode ?? 0, body: JSON.parse(Buffer.concat(chunks).toString('utf8')) as T });
        } catch (err) {
          reject(err as Error);
        }
      });
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(payload);
  });
}

const BUSINESS_DECLINES = new Set(['INSUFFICIENT_BALANCE', 'REFUND_EXCEEDS_AVAILABLE', 'BALANCE_LIMIT_EXCEEDED']);
export const isDecline = (outcome: string) => BUSINESS_DECLINES.has(outcome);

/** POS-like clients: each action is one operation over real HTTP, measured from submit to final. */
export class LoadGenerator {
  readonly samples: Sample[] = [];
  private readonly nextMember: Int32Array;
  private readonly paid: { key: string; txNo: string }[] = [];
  private readonly started = performance.now();
  exhausted = 0;
  private nextUrl = 0;
  /** 'card:member' pairs a fresh-QR charge is under way with. */
  private readonly paying = new Set<string>();

  constructor(private readonly o: LoadOptions) {
    this.nextMember = new Int32Array(o.preload.cards + 1);
  }

  /** Forgets what was recorded so far (after a warm-up). */
  reset(): void {
    this.samples.length = 0;
    this.exhausted = 0;
  }

  elapsedS(): number {
    return (performance.now() - this.started) / 1000;
  }

  /** One action drawn from the mix. */
  async step(): Promise<void> {
    const r = Math.random();
    const { mix } = this.o;
    const action: Action = r < mix.charge ? 'charge' : r < mix.charge + mix.refund && this.paid.length ? 'refund' : r < mix.charge + mix.refund + mix.recharge ? 'recharge' : 'charge';
    if (action === 'charge') return this.charge();
    if (action === 'refund') return this.refund();
    return this.recharge();
  }

  private pickCard(): number {
    const hot = this.o.hotCards;
    return hot ? hot[Math.floor(Math.random() * hot.length)]! : 1 + Math.floor(Math.random() * this.o.preload.cards);
  }

  private async charge(): Promise<void> {
    if (this.o.qr === 'fresh') return this.chargeFreshQr();
    let card = 0;
    for (let tries = 0; tries < 20 && !card; tries++) {
      const c = this.pickCard();
      if (this.nextMember[c]! < this.o.preload.members) card = c;
    }
    if (!card) {
      this.exhausted++;
      return;
    }
    const member = this.nextMember[card]!++;
    const key = this.o.preload.merchantKeys[card % this.o.preload.merchantKeys.length]!;
    const amount = (1 + Math.floor(Math.random() * 30_000)) / 100;
    const sample = await this.submit('charge', '/v1/payments', key, { qr: this.o.preload.qr(card, member), amount: amount.toFixed(2) });
    if (sample?.txNo && this.paid.length < 100_000) this.paid.push({ key, txNo: sample.txNo });
  }

  /** The till flow: the member app issues a QR (app key, for one bound member), then the POS charges it. */
  private async chargeFreshQr(): Promise<void> {
    let pair: [number, number] | undefined;
    for (let tries = 0; tries < 20 && !pair; tries++) {
      const c = this.pickCard();
      const m = Math.floor(Math.random() * this.o.preload.members);
      if (!this.paying.has(`${c}:${m}`)) pair = [c, m];
    }
    if (!pair) {
      this.exhausted++;
      return;
    }
    const [card, member] = pair;
    const slot = `${card}:${member}`;
    this.paying.add(slot);
    try {
      const startS = this.elapsedS();
      const t0 = performance.now();
      const url = this.o.urls[this.nextUrl++ % this.o.urls.length]!;
      let issued: Answer<{ qr_plain?: string; error?: { code: string } }>;
      try {
        issued = await call(`${url}/v1/cards/${this.o.preload.cardId(card)}/qr`, 'POST', { authorization: `Bearer ${this.o.preload.appKey}`, 'content-type': 'application/json' }, { member_id: this.o.preload.memberId(card, member) });
      } catch (err) {
        const ms = performance.now() - t0;
        return void this.record({ action: 'charge', startS, acceptMs: ms, finalMs: ms, qrMs: ms, outcome: `QR_ISSUE_NETWORK_${(err as Error).name}` });
      }
      const qrMs = performance.now() - t0;
      if (issued.status !== 201 || !issued.body.qr_plain) {
        return void this.record({ action: 'charge', startS, acceptMs: qrMs, finalMs: qrMs, qrMs, outcome: `QR_ISSUE_${issued.body.error?.code ?? `HTTP_${issued.status}`}` });
      }
      const key = this.o.preload.merchantKeys[card % this.o.preload.merchantKeys.length]!;
      const amount = (1 + Math.floor(Math.random() * 30_000)) / 100;
      const sample = await this.submit('charge', '/v1/payments', key, { qr: issued.body.qr_plain, amount: amount.toFixed(2) }, qrMs);
      if (sample?.txNo && this.paid.length < 100_000) this.paid.push({ key, txNo: sample.txNo });
    } finally {
      this.paying.delete(slot);
    }
  }

  private async refund(): Promise<void> {
    const i = Math.floor(Math.random() * this.paid.length);
    const payment = this.paid[i]!;
    this.paid[i] = this.paid[this.paid.length - 1]!;
    this.paid.pop();
    await this.submit('refund', '/v1/refunds', payment.key, { original_tx_no: payment.txNo, amount: '1.00' });
  }

  private async recharge(): Promise<void> {
    await this.submit('recharge', `/v1/cards/${this.o.preload.cardId(this.pickCard())}/recharges`, this.o.preload.appKey, { amount: '100.00', payment_method: 'cash', payment_reference: `bench-${randomUUID()}` });
  }

  private async submit(action: Action, path: string, key: string, body: unknown, qrMs?: number): Promise<{ txNo?: string } | undefined> {
    const startS = this.elapsedS() - (qrMs ?? 0) / 1000;
    const t0 = performance.now();
    const headers: Record<string, string> = { authorization: `Bearer ${key}`, 'content-type': 'application/json', 'idempotency-key': randomUUID() };
    if (this.o.mode === 'wait') headers.prefer = 'wait=10';
    const url = this.o.urls[this.nextUrl++ % this.o.urls.length]!;
    try {
      type Op = { id?: string; status?: string; error?: { code: string } | null; result?: { tx_no?: string } };
      const res = await call<Op>(`${url}${path}`, 'POST', headers, body);
      let op = res.body;
      const acceptMs = performance.now() - t0;
      if (res.status >= 400) return void this.record({ action, startS, acceptMs, finalMs: acceptMs, qrMs, outcome: op.error?.code ?? `HTTP_${res.status}` });
      while (op.status === 'queued' || op.status === 'processing') {
        op = (await call<Op>(`${url}/v1/operations/${op.id}`, 'GET', { authorization: `Bearer ${key}`, prefer: 'wait=10' })).body;
      }
      const finalMs = performance.now() - t0;
      this.record({ action, startS, acceptMs, finalMs, qrMs, outcome: op.status === 'succeeded' ? 'succeeded' : (op.error?.code ?? 'UNKNOWN') });
      return { txNo: op.status === 'succeeded' ? op.result?.tx_no : undefined };
    } catch (err) {
      this.record({ action, startS, acceptMs: performance.now() - t0, finalMs: performance.now() - t0, qrMs, outcome: `NETWORK_${(err as Error).name}` });
      return undefined;
    }
  }

  private record(s: Sample) {
    this.samples.push(s);
  }
}

/** Closed loop: `terminals` clients, each sending its next request when the last one finished. */
export async function closedLoop(gen: LoadGenerator, terminals: number, seconds: number): Promise<void> {
  const end = gen.elapsedS() + seconds;
  await Promise.all(
    Array.from({ length: terminals }, async () => {
      while (gen.elapsedS() < end) await gen.step();
    }),
  );
}

/**
 * Open loop: requests start at `rate(t)` per second whatever the answers, as POS traffic does;
 * at most `maxInFlight` at once so an overloaded engine is measured, not the generator's memory.
 */
export async function openLoop(gen: LoadGenerator, rate: (second: number) => number, seconds: number, maxInFlight = 5000): Promise<{ skipped: number }> {
  const tickMs = 10;
  const start = gen.elapsedS();
  const inFlight = new Set<Promise<void>>();
  let owed = 0;
  let skipped = 0;
  while (gen.elapsedS() - start < seconds) {
    owed += (rate(gen.elapsedS() - start) * tickMs) / 1000;
    for (; owed >= 1; owed--) {
      if (inFlight.size >= maxInFlight) {
        skipped++;
        continue;
      }
      const p: Promise<void> = gen.step().finally(() => inFlight.delete(p));
      inFlight.add(p);
    }
    await new Promise((r) => setTimeout(r, tickMs));
  }
  await Promise.all(inFlight);
  return { skipped };
}
