import { createServer, type Server } from 'node:http';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { freePort } from '../../../dev/stack.js';

type Verify = (header: string | undefined, rawBody: string, secret: string, nowS?: number) => boolean;

/** The README's receiver code (docs/webhook-receiver.mjs), loaded as a merchant would use it. */
async function loadVerify(): Promise<Verify> {
  const file = fileURLToPath(new URL('../../../docs/webhook-receiver.mjs', import.meta.url));
  const mod = (await import(pathToFileURL(file).href)) as { verify: Verify };
  return mod.verify;
}

export type ReceiverMode = 'up' | 'down' | 'error';

/**
 * A merchant's webhook receiver on a fixed local port: verifies every signature with the
 * documented `verify`, records each event id it accepted, and can be down (port closed: connection
 * refused) or failing (503) on demand.
 */
export class WebhookReceiver {
  readonly secrets = new Map<string, string>();
  /** event id → times accepted (2xx) */
  readonly accepted = new Map<string, number>();
  badSignatures = 0;
  refusedWhileFailing = 0;
  mode: ReceiverMode = 'up';
  private server?: Server;
  private verify?: Verify;

  private constructor(readonly port: number) {}

  static async start(): Promise<WebhookReceiver> {
    const r = new WebhookReceiver(await freePort());
    r.verify = await loadVerify();
    await r.listen();
    return r;
  }

  url(path: string): string {
    return `http://127.0.0.1:${this.port}${path}`;
  }

  private listen(): Promise<void> {
    const server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c)).on('end', () => {
        if (this.mode === 'error') {
          this.refusedWhileFailing++;
          return res.writeHead(503).end('down for maintenance');
        }
        const raw = Buffer.concat(chunks).toString('utf8');
        const secret = this.secrets.get(req.url ?? '');
        if (!secret || !this.verify!(req.headers['mps-signature'] as string | undefined, raw, secret)) {
          this.badSignatures++;
          return res.writeHead(400).end('bad signature');
        }
        const event = JSON.parse(raw) as { id: string };
        this.accepted.set(event.id, (this.accepted.get(event.id) ?? 0) + 1);
        res.writeHead(200).end('ok');
      });
    });
    server.keepAliveTimeout = 1000;
    this.server = server;
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.port, '127.0.0.1', () => resolve());
    });
  }

  /** down: the port is closed (connection refused); error: 503 to everything; up: verify and accept. */
  async set(mode: ReceiverMode): Promise<void> {
    if (mode === 'down' && this.server) {
      const s = this.server;
      this.server = undefined;
      await new Promise<void>((resolve) => {
        s.close(() => resolve());
        s.closeAllConnections();
      });
    } else if (mode !== 'down' && !this.server) {
      await this.listen();
    }
    this.mode = mode;
  }

  async close(): Promise<void> {
    await this.set('down');
  }
}
