import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { freePort } from '../../../dev/stack.js';

/** One direction of a proxied connection: chunks wait for their release time and while stalled, in order. */
class Pipe {
  private readonly queue: { chunk: Buffer; at: number }[] = [];
  private timer?: NodeJS.Timeout;

  constructor(
    private readonly proxy: FaultProxy,
    private readonly to: Socket,
  ) {}

  push(chunk: Buffer) {
    this.queue.push({ chunk, at: Date.now() + this.proxy.latencyMs });
    this.pump();
  }

  pump() {
    if (this.timer) return;
    while (this.queue.length && !this.proxy.stalled) {
      const head = this.queue[0]!;
      const wait = head.at - Date.now();
      if (wait > 0) {
        this.timer = setTimeout(() => {
          this.timer = undefined;
          this.pump();
        }, wait);
        return;
      }
      this.queue.shift();
      if (!this.to.destroyed) this.to.write(head.chunk);
    }
  }

  clear() {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.queue.length = 0;
  }
}

interface Link {
  client: Socket;
  upstream: Socket;
  pipes: Pipe[];
  /** Bytes are dropped both ways and nothing is ever closed: a half-open connection, as after a silent partition. */
  blackholed?: boolean;
}

/**
 * A TCP proxy between the engine processes and Postgres or Redis that injects network faults:
 * latency on every chunk, stalls (connections stay open, bytes stop moving), resets (every open
 * connection is cut with a TCP RST) and refusals (new connections are cut at once).
 */
export class FaultProxy {
  latencyMs = 0;
  stalled = false;
  refusing = false;
  readonly stats = { connections: 0, resets: 0, refused: 0 };
  private readonly links = new Set<Link>();
  private server?: Server;

  private constructor(
    readonly name: string,
    readonly port: number,
    public upstreamPort: number,
  ) {}

  static async start(name: string, upstreamPort: number): Promise<FaultProxy> {
    const proxy = new FaultProxy(name, await freePort(), upstreamPort);
    await proxy.listen();
    return proxy;
  }

  private listen(): Promise<void> {
    const server = createServer((client) => this.accept(client));
    this.server = server;
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.port, '127.0.0.1', () => resolve());
    });
  }

  private accept(client: Socket) {
    client.on('error', () => undefined);
    if (this.refusing) {
      this.stats.refused++;
      client.resetAndDestroy();
      return;
    }
    this.stats.connections++;
    client.setNoDelay(true);
    const upstream = createConnection({ host: '127.0.0.1', port: this.upstreamPort });
    upstream.setNoDelay(true);
    upstream.on('error', () => undefined);
    const toUpstream = new Pipe(this, upstream);
    const toClient = new Pipe(this, client);
    const link: Link = { client, upstream, pipes: [toUpstream, toClient] };
    this.links.add(link);
    client.on('data', (c: Buffer) => link.blackholed || toUpstream.push(c));
    upstream.on('data', (c: Buffer) => link.blackholed || toClient.push(c));
    const close = () => {
      if (!this.links.delete(link)) return;
      for (const p of link.pipes) p.clear();
      if (!client.destroyed) client.destroy();
      if (!upstream.destroyed) upstream.destroy();
    };
    client.on('close', close);
    upstream.on('close', close);
  }

  /** Cuts every open connection with a TCP RST on both sides. */
  resetAll(): number {
    let n = 0;
    for (const link of [...this.links]) {
      this.links.delete(link);
      for (const p of link.pipes) p.clear();
      if (!link.client.destroyed) link.client.resetAndDestroy();
      if (!link.upstream.destroyed) link.upstream.resetAndDestroy();
      n++;
    }
    this.stats.resets += n;
    return n;
  }

  /**
   * Every connection open now goes silent for good (bytes dropped, no FIN, no RST), while new
   * connections work: what a client sees when a NAT, firewall or failed-over host forgets a flow.
   */
  blackholeOpen(): number {
    let n = 0;
    for (const link of this.links) {
      if (link.blackholed) continue;
      link.blackholed = true;
      for (const p of link.pipes) p.clear();
      n++;
    }
    return n;
  }

  stall(on: boolean) {
    this.stalled = on;
    if (!on) for (const link of this.links) for (const p of link.pipes) p.pump();
  }

  get open(): number {
    return this.links.size;
  }

  async close(): Promise<void> {
    this.stall(false);
    this.resetAll();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }
}
