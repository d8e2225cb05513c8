import { randomUUID } from 'node:crypto';
import type { Preload } from '../../../bench/preload.js';

export type Kind = 'payment' | 'refund' | 'recharge';
/** What a client may ask for: the POS mix, or what a scenario adds of its own (transfers). */
export type AskedKind = Kind | 'transfer';

const TERMINAL = new Set(['succeeded', 'failed']);

/** What the clients know about one operation the API accepted (answered 200/202 with its id). */
export interface AcceptedOp {
  id: string;
  kind: AskedKind;
  idempotencyKey: string;
  /** Test-process time of the first answer that named this operation. */
  acceptedAt: number;
  /** The terminal status a client was shown, if any: it must be the one Postgres ends with. */
  seen?: { status: string; code: string | null };
}

export interface ClientStats {
  requests: number;
  attempts: number;
  retried: number;
  networkErrors: number;
  timeouts: number;
  gaveUp: number;
  byStatus: Map<string, number>;
  rejected: Map<string, number>;
  serverErrors: Map<string, number>;
}

function bump(map: Map<string, number>, key: string, n = 1) {
  map.set(key, (map.get(key) ?? 0) + n);
}

export interface ClientOptions {
  url: () => string;
  /** One attempt's budget; past it the client aborts and retries with the same key. */
  attemptTimeoutMs: number;
  /** How long a POS keeps retrying one request before giving up. */
  giveUpMs: number;
  /** `Prefer: wait=N` on POSTs (0 = none). */
  waitS: number;
}

/**
 * POS-like HTTP clients: every request carries an Idempotency-Key and is retried with the same
 * key after a network error, a timeout, a 5xx or a 429, as a POS does when it cannot tell whether
 * its request went through. Keeps the list of every operation the API accepted, and checks on the
 * fly that one key always names one operation and that a terminal answer never changes.
 */
export class PosClients {
  readonly accepted = new Map<string, AcceptedOp>();
  readonly keyToOp = new Map<string, string>();
  readonly violations: string[] = [];
  readonly stats: ClientStats = { requests: 0, attempts: 0, retried: 0, networkErrors: 0, timeouts: 0, gaveUp: 0, byStatus: new Map(), rejected: new Map(), serverErrors: new Map() };
  /** When the last attempt of any request failed with a network error, 5xx or timeout (test clock). */
  lastFailureAt = 0;

  constructor(private readonly o: ClientOptions) {}

  /**
   * Sends one request until it is answered for good. Returns the operation JSON of a 200/202, the
   * error body of another 4xx, or undefined when the client gave up.
   */
  async send(method: 'POST' | 'GET', path: string, apiKey: string, body?: unknown, opts: { idempotencyKey?: string; kind?: AskedKind; waitS?: number } = {}): Promise<{ status: number; json: any } | undefined> {
    const key = opts.idempotencyKey ?? randomUUID();
    const started = Date.now();
    const waitS = opts.waitS ?? this.o.waitS;
    this.stats.requests++;
    for (let attempt = 0; ; attempt++) {
      if (attempt > 0) this.stats.retried++;
      this.stats.attempts++;
      const headers: Record<string, string> = { authorization: `Bearer ${apiKey}` };
      if (method === 'POST') {
        headers['content-type'] = 'application/json';
        headers['idempotency-key'] = key;
      }
      if (waitS > 0) headers.prefer = `wait=${waitS}`;
      let failure: string;
      try {
        const res = await fetch(`${this.o.url()}${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), signal: AbortSignal.timeout(this.o.attemptTimeoutMs) });
        const text = await res.text();
        let json: any;
        try {
          json = JSON.parse(text);
        } catch {
          json = { raw: text.slice(0, 200) };
        }
        bump(this.stats.byStatus, String(res.status));
        if (res.status >= 200 && res.status < 300) {
          if (method === 'POST' && opts.kind) this.record(key, opts.kind, json);
          else if (json?.id) this.observe(json);
          return { status: res.status, json };
        }
        const code: string | undefined = json?.error?.code;
        if (code === 'IDEMPOTENCY_KEY_REUSED') this.violations.push(`409 IDEMPOTENCY_KEY_REUSED for a retry of the same request (key ${key})`);
        // 409 CONFLICT is the API's "a concurrent request with this key is in progress; retry".
        if (res.status >= 500 || res.status === 429 || (res.status === 409 && code === 'CONFLICT')) {
          failure = `HTTP ${res.status} ${json?.error?.code ?? ''}`;
          bump(this.stats.serverErrors, `${res.status} ${json?.error?.code ?? 'no code'}`);
        } else {
          bump(this.stats.rejected, json?.error?.code ?? `HTTP_${res.status}`);
          return { status: res.status, json };
        }
      } catch (err) {
        const e = err as Error;
        if (e.name === 'TimeoutError' || e.name === 'AbortError') this.stats.timeouts++;
        else this.stats.networkErrors++;
        failure = e.name;
      }
      this.lastFailureAt = Date.now();
      if (Date.now() - started > this.o.giveUpMs) {
        this.stats.gaveUp++;
        this.violations.push(`gave up on ${method} ${path} (key ${key}) after ${attempt + 1} attempts: ${failure}`);
        return undefined;
      }
      const backoff = Math.min(2000, 100 * 2 ** Math.min(attempt, 5));
      await new Promise((r) => setTimeout(r, backoff / 2 + Math.random() * backoff));
    }
  }

  private record(key: string, kind: AskedKind, op: { id?: string; status?: string; error?: { code?: string } | null }) {
    if (!op?.id) {
      this.violations.push(`a 200/202 for key ${key} without an operation id: ${JSON.stringify(op).slice(0, 200)}`);
      return;
    }
    const known = this.keyToOp.get(key);
    if (known && known !== op.id) this.violations.push(`Idempotency-Key ${key} named two operations: ${known} and ${op.id}`);
    this.keyToOp.set(key, op.id);
    if (!this.accepted.has(op.id)) this.accepted.set(op.id, { id: op.id, kind, idempotencyKey: key, acceptedAt: Date.now() });
    this.observe(op);
  }

  /** Remembers a terminal answer; a different terminal answer later for the same operation is a violation. */
  observe(op: { id?: string; status?: string; error?: { code?: string } | null }) {
    if (!op?.id || !op.status || !TERMINAL.has(op.status)) return;
    const entry = this.accepted.get(op.id);
    if (!entry) return;
    const seen = { status: op.status, code: op.error?.code ?? null };
    if (entry.seen && (entry.seen.status !== seen.status || entry.seen.code !== seen.code)) {
      this.violations.push(`operation ${op.id} was shown ${entry.seen.status}/${entry.seen.code} and later ${seen.status}/${seen.code}`);
    }
    entry.seen ??= seen;
  }
}

export interface LoadOptions {
  data: Preload;
  /** Requests started per second, whatever the answers (open loop). */
  ratePerS: number;
  /** At most this many requests (with their retries) at once; beyond it a tick is skipped. */
  maxInFlight: number;
  /** Card numbers (1-based) that take `hotShare` of the traffic. */
  hotCards: number[];
  hotShare: number;
  mix: Record<Kind, number>;
  rng?: () => number;
}

export interface Paid {
  merchantKey: string;
  txNo: string;
  finalMinor: number;
}

/**
 * Steady POS-like traffic: charges with the preloaded QR tokens (each used once), partial refunds
 * of payments the clients saw succeed (sometimes two at once on one payment), and recharges, over
 * a few hundred cards of which a few are hot.
 */
export class PosLoad {
  private readonly nextMember: Int32Array;
  private readonly paid: Paid[] = [];
  private readonly inFlight = new Set<Promise<unknown>>();
  private running = false;
  private loop?: Promise<void>;
  private readonly rng: () => number;
  skipped = 0;
  exhausted = 0;
  readonly issued: Record<Kind, number> = { payment: 0, refund: 0, recharge: 0 };

  constructor(
    readonly clients: PosClients,
    private readonly o: LoadOptions,
  ) {
    this.nextMember = new Int32Array(o.data.cards + 1);
    this.rng = o.rng ?? Math.random;
  }

  start(): void {
    this.running = true;
    this.loop = (async () => {
      const tickMs = 20;
      let owed = 0;
      let last = Date.now();
      while (this.running) {
        const now = Date.now();
        owed += ((now - last) * this.o.ratePerS) / 1000;
        last = now;
        for (; owed >= 1; owed--) {
          if (this.inFlight.size >= this.o.maxInFlight) {
            this.skipped++;
            continue;
          }
          this.track(this.step());
        }
        await new Promise((r) => setTimeout(r, tickMs));
      }
    })();
  }

  /** Runs a request alongside the load and counts it in flight. */
  track<T>(p: Promise<T>): Promise<T> {
    const tracked = p.finally(() => this.inFlight.delete(tracked));
    this.inFlight.add(tracked);
    return tracked;
  }

  /** Stops starting new requests and waits for those in flight (they retry until answered). */
  async stop(): Promise<void> {
    this.running = false;
    await this.loop;
    while (this.inFlight.size) await Promise.allSettled([...this.inFlight]);
  }

  get pending(): number {
    return this.inFlight.size;
  }

  private pick<T>(list: readonly T[]): T {
    return list[Math.floor(this.rng() * list.length)]!;
  }

  private readonly reserved = new Set<number>();

  /** Keeps the load off these cards (a scenario uses them for its own exact checks). */
  reserve(...cards: number[]): void {
    for (const c of cards) this.reserved.add(c);
  }

  /** Next unused QR member of a card (for scenarios that charge outside the mix). */
  takeMember(card: number): number {
    return this.nextMember[card]!++;
  }

  private pickCard(): number {
    for (;;) {
      const c = this.o.hotCards.length && this.rng() < this.o.hotShare ? this.pick(this.o.hotCards) : 1 + Math.floor(this.rng() * this.o.data.cards);
      if (!this.reserved.has(c)) return c;
    }
  }

  /** A payment the clients saw succeed, if any (it leaves the refund pool). */
  takePaid(): Paid | undefined {
    return this.paid.pop();
  }

  private async step(): Promise<void> {
    const r = this.rng();
    const { mix } = this.o;
    const total = mix.payment + mix.refund + mix.recharge;
    if (r < mix.refund / total && this.paid.length) return this.refund();
    if (r < (mix.refund + mix.recharge) / total) return this.recharge();
    await this.charge();
  }

  /** A charge with the next unused QR of a card; false when every QR of the cards tried is used. */
  async charge(card?: number, amountMinor?: number): Promise<boolean> {
    let c = card ?? 0;
    for (let tries = 0; !card && tries < 20 && !c; tries++) {
      const candidate = this.pickCard();
      if (this.nextMember[candidate]! < this.o.data.members) c = candidate;
    }
    if (!c || this.nextMember[c]! >= this.o.data.members) {
      this.exhausted++;
      return false;
    }
    const member = this.nextMember[c]!++;
    const merchantKey = this.pick(this.o.data.merchantKeys);
    const amount = amountMinor ?? 100 + Math.floor(this.rng() * 29_900);
    this.issued.payment++;
    const res = await this.clients.send('POST', '/v1/payments', merchantKey, { qr: this.o.data.qr(c, member), amount: (amount / 100).toFixed(2) }, { kind: 'payment' });
    const op = res?.json;
    if (op?.status === 'succeeded' && op.result?.tx_no) {
      this.paid.push({ merchantKey, txNo: op.result.tx_no, finalMinor: Math.round(Number(op.result.final_amount) * 100) });
    }
    return true;
  }

  private async refund(): Promise<void> {
    const i = Math.floor(this.rng() * this.paid.length);
    const payment = this.paid[i]!;
    // Usually the payment leaves the pool; sometimes it stays, so refunds of one payment race.
    if (this.rng() < 0.7) {
      this.paid[i] = this.paid[this.paid.length - 1]!;
      this.paid.pop();
    }
    const amount = Math.max(1, Math.floor(payment.finalMinor * (0.2 + this.rng() * 0.5)));
    this.issued.refund++;
    await this.clients.send('POST', '/v1/refunds', payment.merchantKey, { original_tx_no: payment.txNo, amount: (amount / 100).toFixed(2), reason: 'fault suite' }, { kind: 'refund' });
  }

  private async recharge(): Promise<void> {
    this.issued.recharge++;
    const amount = 1000 + Math.floor(this.rng() * 9000);
    // The member app's backend credits against its payment provider's reference (one per recharge; retries resend it).
    const body = { amount: (amount / 100).toFixed(2), payment_method: 'cash', payment_reference: `psp-${randomUUID()}` };
    await this.clients.send('POST', `/v1/cards/${this.o.data.cardId(this.pickCard())}/recharges`, this.o.data.appKey, body, { kind: 'recharge' });
  }
}
