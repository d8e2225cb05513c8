import type { Config } from '../config/env.js';
import type { DemoData } from '../db/seeds/demo.js';

/** What `npm start` prints: the demo keys and a QR payment to paste into a shell (curl only, no jq). */
export function demoInstructions(url: string, d: DemoData): string {
  const field = (name: string) => `grep -o '"${name}":"[^"]*"' | head -1 | cut -d'"' -f4`;
  return `
──────────────── MPS demo ────────────────
API            ${url}   (health: ${url}/health, ready: ${url}/ready, metrics: ${url}/metrics)
Admin key      ${d.adminKey}
App key        ${d.appKey}
Merchant DEMO01 key  ${d.merchantKey}
Member         ${d.memberId}
Prepaid card   ${d.prepaidCardId}  (no. ${d.prepaidCardNo}, binding password ${d.bindingPassword})
Standard card  ${d.standardCardId}

A QR payment, ready to paste:

export MPS=${url} APP=${d.appKey} POS=${d.merchantKey} CARD=${d.prepaidCardId}
# 1. the member app gets a QR for the prepaid card
QR=$(curl -s -X POST $MPS/v1/cards/$CARD/qr -H "Authorization: Bearer $APP" -H 'Content-Type: application/json' -d '{}' | ${field('qr_plain')}); echo $QR
# 2. the POS checks it (does not use it up)
curl -s -X POST $MPS/v1/qr/validate -H "Authorization: Bearer $POS" -H 'Content-Type: application/json' -d "{\\"qr\\":\\"$QR\\"}"; echo
# 3. the POS charges 299.00 and waits up to 5 s for the result
OP=$(curl -s -X POST $MPS/v1/payments -H "Authorization: Bearer $POS" -H 'Content-Type: application/json' -H "Idempotency-Key: demo-$(date +%s)" -H 'Prefer: wait=5' -d "{\\"qr\\":\\"$QR\\",\\"amount\\":\\"299.00\\"}"); echo $OP
# 4. poll the operation, refund 50.00 of it, and read the card
curl -s $MPS/v1/operations/$(echo $OP | ${field('id')}) -H "Authorization: Bearer $POS"; echo
curl -s -X POST $MPS/v1/refunds -H "Authorization: Bearer $POS" -H 'Content-Type: application/json' -H "Idempotency-Key: refund-$(date +%s)" -H 'Prefer: wait=5' -d "{\\"original_tx_no\\":\\"$(echo $OP | ${field('tx_no')})\\",\\"amount\\":\\"50.00\\"}"; echo
curl -s $MPS/v1/cards/$CARD -H "Authorization: Bearer $APP"; echo
# 5. a top-up at the till: the member shows a fresh QR (the payment used the last one), the cashier takes 500.00 in cash
QR=$(curl -s -X POST $MPS/v1/cards/$CARD/qr -H "Authorization: Bearer $APP" -H 'Content-Type: application/json' -d '{}' | ${field('qr_plain')})
curl -s -X POST $MPS/v1/recharges -H "Authorization: Bearer $POS" -H 'Content-Type: application/json' -H "Idempotency-Key: till-$(date +%s)" -H 'Prefer: wait=5' -d "{\\"qr\\":\\"$QR\\",\\"amount\\":\\"500.00\\",\\"payment_method\\":\\"cash\\"}"; echo
# 6. a second prepaid card for the member, and 20.00 moved onto it
CARD2=$(curl -s -X POST $MPS/v1/cards -H "Authorization: Bearer $APP" -H 'Content-Type: application/json' -d "{\\"type\\":\\"prepaid\\",\\"owner_member_id\\":\\"${d.memberId}\\",\\"binding_password\\":\\"Family-2-$RANDOM\\"}" | ${field('id')})
curl -s -X POST $MPS/v1/transfers -H "Authorization: Bearer $APP" -H 'Content-Type: application/json' -H "Idempotency-Key: move-$(date +%s)" -H 'Prefer: wait=5' -d "{\\"from_card_id\\":\\"$CARD\\",\\"to_card_id\\":\\"$CARD2\\",\\"amount\\":\\"20.00\\"}"; echo
──────────────────────────────────────────
`;
}

/** One of the engine's processes under `npm start`, and where its /health and /metrics are (the web's: the API's). */
export interface EngineProcessInfo {
  name: string;
  pid: number;
  opsUrl?: string;
}

/** Where everything listens; the embedded stack's ports change at every start. */
export function stackBanner(url: string, config: Config, embedded: boolean, processes: EngineProcessInfo[] = []): string {
  const lines = [
    `API          ${url}   (listening on ${config.HOST})`,
    `Bull Board   ${url}/admin/queues   (user admin, password an admin key)`,
    `Metrics      ${url}/metrics${config.METRICS_TOKEN ? '   (Bearer METRICS_TOKEN)' : ''}   (the web process: HTTP; operations are counted by the workers)`,
  ];
  processes.forEach((p, i) => {
    const where = p.opsUrl ? `${p.opsUrl}/metrics, ${p.opsUrl}/health` : p.name === 'web' ? 'the API above' : 'no /metrics (port 0)';
    lines.push(`${i === 0 ? 'Processes' : ''.padEnd(9)}    ${p.name.padEnd(10)} pid ${String(p.pid).padEnd(8)} ${where}`);
  });
  if (embedded) {
    lines.push(`Postgres     ${config.DATABASE_URL}`, `Redis        ${config.REDIS_URL}`, 'npm run cli -- doctor | verify-ledger | verify-audit   finds this stack by itself (./.data/stack.json)');
  } else {
    lines.push('No demo data against a given DATABASE_URL: create the first admin key with MPS_ADMIN_KEY or `npm run cli -- create-admin-key`.');
  }
  return lines.join('\n');
}
