import { randomUUID } from 'node:crypto';
import type { Kind } from './helpers/load.js';
import { assertHeld, runScenario, type ScenarioContext } from './helpers/scenario.js';

// Cards the load leaves alone, for exact expectations (numbers from the preload, 1-based).
const CONFLICT_CARD = 300;
const SAME_QR_CARD = 299;
const REFUND_CARD = 298;
const BURSTS = 15;
const COPIES = 10;

/** One request sent `copies` times at once with one Idempotency-Key; returns the distinct operation ids answered. */
async function burst(ctx: ScenarioContext, kind: Kind, path: string, key: string, body: unknown, copies: number): Promise<Set<string>> {
  const idempotencyKey = randomUUID();
  const answers = await Promise.all(
    Array.from({ length: copies }, (_, i) => ctx.load.track(ctx.clients.send('POST', path, key, body, { idempotencyKey, kind, waitS: i % 2 ? 3 : 0 }))),
  );
  return new Set(answers.map((a) => a?.json?.id).filter((id): id is string => typeof id === 'string'));
}

describe('faults: bursts of concurrent duplicates and conflicting charges on one card', () => {
  it('one key is one operation, and the card lock decides conflicts without overdraft or double use', async () => {
    const found: string[] = [];
    const report = await runScenario({
      title: '8. bursts of concurrent duplicate requests (same Idempotency-Key) and conflicting charges on one card',
      async setup(ctx) {
        ctx.load.reserve(CONFLICT_CARD, SAME_QR_CARD, REFUND_CARD);
      },
      async fault(ctx) {
        const { data } = ctx;
        const [m0, m1, m2] = data.merchantKeys as [string, string, string];

        // A. duplicate bursts of charges, recharges and refunds.
        let split = 0;
        await ctx.harm(`${BURSTS} bursts of ${COPIES} identical concurrent requests each (charges, recharges, refunds)`);
        await Promise.all(
          Array.from({ length: BURSTS }, async (_, i) => {
            let ids: Set<string>;
            if (i % 3 === 0) {
              const card = 10 + i;
              ids = await burst(ctx, 'payment', '/v1/payments', m0, { qr: data.qr(card, ctx.load.takeMember(card)), amount: '12.34' }, COPIES);
            } else if (i % 3 === 1) {
              ids = await burst(ctx, 'recharge', `/v1/cards/${data.cardId(20 + i)}/recharges`, data.appKey, { amount: '55.00', payment_method: 'cash', payment_reference: `psp-${randomUUID()}` }, COPIES);
            } else {
              const paid = ctx.load.takePaid();
              if (!paid) return;
              ids = await burst(ctx, 'refund', '/v1/refunds', paid.merchantKey, { original_tx_no: paid.txNo, amount: '0.50' }, COPIES);
            }
            if (ids.size !== 1) split++;
          }),
        );
        if (split) found.push(`${split} bursts were answered with more than one operation id`);

        // B. ten members charge one card at once, each copy sent 3 times: 5000.00 holds exactly two charges of 2000.00 (the second at silver, 1900.00).
        await ctx.harm(`10 members charge card ${CONFLICT_CARD} 2000.00 at once (each sent 3×), balance 5000.00`);
        await Promise.all(Array.from({ length: 10 }, (_, m) => burst(ctx, 'payment', '/v1/payments', [m0, m1, m2][m % 3]!, { qr: data.qr(CONFLICT_CARD, m), amount: '2000.00' }, 3)));

        // C. one QR presented by three merchants at once (three keys): one charge, two refusals.
        await ctx.harm(`one QR of card ${SAME_QR_CARD} presented by 3 merchants at once`);
        await Promise.all([m0, m1, m2].map((k) => ctx.load.track(ctx.clients.send('POST', '/v1/payments', k, { qr: data.qr(SAME_QR_CARD, 0), amount: '10.00' }, { kind: 'payment' }))));

        // D. six concurrent refunds of 30.00 on one 100.00 payment: three fit.
        const pay = await ctx.clients.send('POST', '/v1/payments', m0, { qr: data.qr(REFUND_CARD, 0), amount: '100.00' }, { kind: 'payment', waitS: 10 });
        const txNo = pay?.json?.result?.tx_no as string | undefined;
        if (!txNo) found.push(`the 100.00 payment did not succeed: ${JSON.stringify(pay?.json)}`);
        else {
          await ctx.harm(`6 concurrent refunds of 30.00 of payment ${txNo} (final 100.00)`);
          await Promise.all(Array.from({ length: 6 }, () => ctx.load.track(ctx.clients.send('POST', '/v1/refunds', m0, { original_tx_no: txNo, amount: '30.00' }, { kind: 'refund' }))));
        }

        // E. a key reused for a different request is refused and makes nothing.
        const key = randomUUID();
        const reference = `psp-${randomUUID()}`;
        const post = (amount: string) =>
          fetch(`${ctx.engine.url}/v1/cards/${data.cardId(30)}/recharges`, { method: 'POST', headers: { authorization: `Bearer ${data.appKey}`, 'content-type': 'application/json', 'idempotency-key': key }, body: JSON.stringify({ amount, payment_method: 'cash', payment_reference: reference }) });
        const first = await post('10.00');
        const second = await post('11.00');
        const firstOp = (await first.json()) as { id: string };
        const secondBody = (await second.json()) as { error?: { code: string } };
        ctx.clients.accepted.set(firstOp.id, { id: firstOp.id, kind: 'recharge', idempotencyKey: key, acceptedAt: Date.now() });
        if (second.status !== 409 || secondBody.error?.code !== 'IDEMPOTENCY_KEY_REUSED') found.push(`a reused key with another body answered ${second.status} ${JSON.stringify(secondBody)}`);
      },
      async verify(ctx, problems) {
        problems.push(...found);
        const card = async (c: number) =>
          (
            await ctx.db.raw<{ rows: { status: string; code: string | null; n: string }[] }>(
              `SELECT status, error_code AS code, count(*) AS n FROM operations WHERE card_id = ? AND type = 'payment' GROUP BY 1, 2`,
              [ctx.data.cardId(c)],
            )
          ).rows;
        const count = (rows: { status: string; code: string | null; n: string }[], status: string, code: string | null = null) => Number(rows.find((r) => r.status === status && r.code === code)?.n ?? 0);
        const conflict = await card(CONFLICT_CARD);
        const balance = (await ctx.db('member_cards').where({ id: ctx.data.cardId(CONFLICT_CARD) }).first('balance_minor')).balance_minor as number;
        console.log(`     conflict card: ${count(conflict, 'succeeded')} charges succeeded, ${count(conflict, 'failed', 'INSUFFICIENT_BALANCE')} INSUFFICIENT_BALANCE, balance ${balance / 100}`);
        if (count(conflict, 'succeeded') !== 2 || count(conflict, 'failed', 'INSUFFICIENT_BALANCE') !== 8 || balance !== 110_000) {
          problems.push(`conflict card: expected 2 charges (2000.00 + 1900.00) and 8 INSUFFICIENT_BALANCE leaving 1100.00, got ${JSON.stringify(conflict)} and ${balance / 100}`);
        }
        const sameQr = await card(SAME_QR_CARD);
        console.log(`     one QR, three merchants: ${count(sameQr, 'succeeded')} succeeded, ${count(sameQr, 'failed', 'QR_EXPIRED_OR_INVALID')} QR_EXPIRED_OR_INVALID`);
        if (count(sameQr, 'succeeded') !== 1 || count(sameQr, 'failed', 'QR_EXPIRED_OR_INVALID') !== 2) problems.push(`one QR, three merchants: expected 1 success and 2 refusals, got ${JSON.stringify(sameQr)}`);
        const { rows: refunds } = await ctx.db.raw<{ rows: { status: string; code: string | null; n: string }[] }>(
          `SELECT status, error_code AS code, count(*) AS n FROM operations WHERE card_id = ? AND type = 'refund' GROUP BY 1, 2`,
          [ctx.data.cardId(REFUND_CARD)],
        );
        console.log(`     six 30.00 refunds of 100.00: ${count(refunds, 'succeeded')} succeeded, ${count(refunds, 'failed', 'REFUND_EXCEEDS_AVAILABLE')} REFUND_EXCEEDS_AVAILABLE`);
        if (count(refunds, 'succeeded') !== 3 || count(refunds, 'failed', 'REFUND_EXCEEDS_AVAILABLE') !== 3) problems.push(`six 30.00 refunds of 100.00: expected 3 and 3, got ${JSON.stringify(refunds)}`);
        const { rows: keys } = await ctx.db.raw<{ rows: { n: string }[] }>(`SELECT count(*) AS n FROM (SELECT principal, idempotency_key FROM operations WHERE idempotency_key IS NOT NULL GROUP BY 1, 2 HAVING count(*) > 1) d`);
        if (Number(keys[0]!.n)) problems.push(`${keys[0]!.n} idempotency keys with more than one operation`);
        const sent = ctx.clients.stats.requests;
        const distinct = ctx.clients.keyToOp.size;
        console.log(`     ${sent} requests sent under ${distinct} distinct keys named ${new Set(ctx.clients.keyToOp.values()).size} operations`);
      },
    });
    assertHeld(report);
  });
});
