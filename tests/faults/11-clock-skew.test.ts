import { assertHeld, runScenario, type ScenarioContext } from './helpers/scenario.js';

const QR_CARD = 300;
const TOKEN_CARD = 299;
const WINDOW_CARD = 298;

/**
 * Decisions about time under a skewed process clock: a fresh QR issued through the api charges, a
 * member token issued through the api authenticates, a payment made now is refundable.
 */
async function timeDecisions(ctx: ScenarioContext, label: string, problems: string[]): Promise<void> {
  const { data, db, clients } = ctx;
  const [merchant] = data.merchantKeys as [string];
  const member = (await db('member_cards').where({ id: data.cardId(TOKEN_CARD) }).first('owner_member_id')).owner_member_id as string;

  // A QR issued now with the shortest TTL (60 s): expires_at must be Postgres now() + 60 s, and it must pay.
  const qr = await clients.send('POST', `/v1/cards/${data.cardId(QR_CARD)}/qr`, data.appKey, { ttl_seconds: 60 });
  const { rows } = await db.raw<{ rows: { skew_s: number }[] }>(`SELECT extract(epoch FROM ?::timestamptz - now())::float AS skew_s`, [qr?.json?.expires_at ?? null]);
  const ttl = rows[0]?.skew_s;
  if (qr?.status !== 201 || ttl === undefined || ttl === null || Math.abs(ttl - 60) > 10) problems.push(`[${label}] QR issue: ${qr?.status}, expires ${ttl?.toFixed?.(0)} s after Postgres now (want 60)`);
  const charge = qr?.json?.qr_plain ? await clients.send('POST', '/v1/payments', merchant, { qr: qr.json.qr_plain, amount: '25.00' }, { kind: 'payment', waitS: 10 }) : undefined;
  if (charge?.json?.status !== 'succeeded') problems.push(`[${label}] a fresh 60 s QR did not pay: ${JSON.stringify(charge?.json?.error ?? charge?.json)}`);

  // A payment made now can be refunded now.
  const c = WINDOW_CARD;
  const pay = await clients.send('POST', '/v1/payments', merchant, { qr: ctx.data.qr(c, ctx.load.takeMember(c)), amount: '40.00' }, { kind: 'payment', waitS: 10 });
  const refund = pay?.json?.result?.tx_no ? await clients.send('POST', '/v1/refunds', merchant, { original_tx_no: pay.json.result.tx_no, amount: '40.00' }, { kind: 'refund', waitS: 10 }) : undefined;
  if (refund?.json?.status !== 'succeeded') problems.push(`[${label}] a payment made now was not refundable: payment ${JSON.stringify(pay?.json?.error ?? pay?.json?.status)}, refund ${JSON.stringify(refund?.json?.error ?? refund?.json)}`);

  // A member token (MEMBER_TOKEN_TTL_S, default 1 h) issued now must authenticate now.
  const token = await clients.send('POST', `/v1/members/${member}/tokens`, data.appKey, {});
  // The token issues its member a QR (member tokens may not recharge: value only against money).
  const tokenQr = token?.json?.token ? await clients.send('POST', `/v1/cards/${data.cardId(TOKEN_CARD)}/qr`, token.json.token, {}) : undefined;
  if (tokenQr?.status !== 201) {
    problems.push(`[${label}] a member token issued now (expires_at ${token?.json?.expires_at}) was refused: ${tokenQr?.status} ${JSON.stringify(tokenQr?.json?.error ?? tokenQr?.json)}`);
  }
  // A card that expires in an hour (Postgres time) is a card that has not expired.
  const { rows: inAnHour } = await db.raw<{ rows: { t: Date }[] }>(`SELECT now() + interval '1 hour' AS t`);
  const created = await clients.send('POST', '/v1/members', data.appKey, { name: `Clock ${label}` });
  const card = await clients.send('POST', '/v1/cards', data.appKey, { type: 'prepaid', owner_member_id: created?.json?.id, expires_at: inAnHour[0]!.t.toISOString(), binding_password: 'Fault-suite-pw1' });
  if (card?.status !== 201) problems.push(`[${label}] a card expiring in 1 h (Postgres time) was refused: ${card?.status} ${JSON.stringify(card?.json?.error ?? card?.json)}`);
  ctx.note(`[${label}] card expiring in 1 h: ${card?.status}`);
  ctx.note(`[${label}] fresh 60 s QR: ${charge?.json?.status ?? '?'}; refund of a payment made now: ${refund?.json?.status ?? refund?.json?.error?.code ?? '?'}; member token QR issue: ${tokenQr?.status}`);
}

describe('faults: clock skew on the engine processes', () => {
  it('QR expiry, refund windows and token expiry follow Postgres now(), never the process clock', async () => {
    const found: string[] = [];
    const report = await runScenario({
      title: '11. clock skew: api and worker at +2 h (libfaketime), then worker at +200 days and api at -3 h; QR TTL 10 min, refund window 180 days',
      clock: { api: '+2h', worker: '+2h' },
      qrTtlS: 600,
      async setup(ctx) {
        ctx.load.reserve(QR_CARD, TOKEN_CARD, WINDOW_CARD);
        const { rows } = await ctx.db.raw<{ rows: { now: Date }[] }>('SELECT now()');
        ctx.note(`postgres now ${rows[0]!.now.toISOString()}; api and worker think it is 2 h later`);
      },
      async fault(ctx) {
        await timeDecisions(ctx, 'api +2h, worker +2h', found);
        ctx.engine.clock.worker = '+200d';
        await ctx.harm('worker restarted with its clock 200 days ahead (past the 180-day refund window)');
        await ctx.engine.replaceWorker(ctx.engine.workers[0]!, {}, true);
        ctx.engine.clock.api = '-3h';
        await ctx.harm('api restarted with its clock 3 h behind');
        await ctx.engine.restartApi();
        await timeDecisions(ctx, 'api -3h, worker +200d', found);
      },
      async verify(ctx, problems) {
        problems.push(...found);
        const { rows } = await ctx.db.raw<{ rows: { code: string; n: string }[] }>(
          `SELECT error_code AS code, count(*) AS n FROM operations WHERE status = 'failed' AND error_code IN ('QR_EXPIRED_OR_INVALID', 'REFUND_WINDOW_EXPIRED', 'CARD_EXPIRED') GROUP BY 1`,
        );
        for (const r of rows) problems.push(`${r.n} operations failed with ${r.code} under a skewed process clock`);
      },
    });
    assertHeld(report);
  });
});
