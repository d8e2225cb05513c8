import type { Knex } from 'knex';
import { uuidSql } from './preload.js';

/**
 * What the daily reports need besides the scale scenario's payments, in bulk SQL: refunds of
 * 2 % of the spread-out payments (an hour after each, the payment marked partially refunded),
 * failed payment operations (1 % of the payments, three codes) over the same 400 days, and today's
 * traffic in SETTLEMENT_TZ up to now (payments by four methods, refunds of older payments and
 * declines), so that a report's live part has a day's work to do. External methods only: no
 * ledger rows are needed and the money invariants still hold.
 */
export async function preloadReportActivity(
  db: Knex,
  o: { run: string; cards: number; total: number; dayCount: number; today: number; merchantIds: string[]; adminKeyId: string; timeZone: string },
): Promise<{ refunds: number; declines: number; today_payments: number; today_refunds: number; today_declines: number }> {
  // One connection throughout: the refunds go through a temporary table.
  const counts = await db.transaction((trx) => insertActivity(trx, o));
  await db.raw('ANALYZE transactions');
  await db.raw('ANALYZE operations');
  return counts;
}

async function insertActivity(db: Knex.Transaction, o: Parameters<typeof preloadReportActivity>[1]) {
  const RUN = o.run.toUpperCase();
  const card = (c: string) => uuidSql(`'bench-${o.run}-c-' || ${c}`);
  const member = (c: string) => uuidSql(`'bench-${o.run}-m-' || ${c} || '-0'`);
  const opColumns = `id, type, status, principal, request_hash, api_key_id, actor_role, merchant_id, card_id, partition, amount_minor, payment_method, original_tx_no, error_code, error_message, created_at, completed_at, result`;

  /** Refunds of the payments `pick` selects (by their series number s), at `at`. */
  const refunds = async (prefix: string, pick: string, at: string) => {
    const source = `SELECT p.id AS payment_id, p.tx_no, p.card_id, p.member_id, p.merchant_id, greatest(p.final_amount_minor / 4, 1) AS amount, ${at} AS at, s
                      FROM (SELECT t.*, substring(t.operation_id FROM '_(\\d+)$')::bigint AS s FROM transactions t WHERE t.operation_id LIKE 'op_s${o.run}_%') p
                     WHERE ${pick}`;
    await db.raw(`CREATE TEMP TABLE bench_refunds AS ${source}`);
    await db.raw(
      `INSERT INTO operations (${opColumns})
       SELECT 'op_${prefix}${o.run}_' || s, 'refund', 'succeeded', 'bench', md5('${prefix}' || s::text), ?, 'merchant', merchant_id, card_id, 0, amount, NULL, tx_no, NULL, NULL, at, at, '{}' FROM bench_refunds`,
      [o.adminKeyId],
    );
    await db.raw(
      `INSERT INTO transactions (tx_no, type, operation_id, card_id, member_id, merchant_id, original_tx_id, raw_amount_minor, final_amount_minor, payment_method, created_at)
       SELECT 'REF${prefix.toUpperCase()}${RUN}' || lpad(s::text, 9, '0'), 'refund', 'op_${prefix}${o.run}_' || s, card_id, member_id, merchant_id, payment_id, amount, amount, 'cash', at FROM bench_refunds`,
    );
    await db.raw(`UPDATE transactions p SET refunded_amount_minor = p.refunded_amount_minor + r.amount, status = 'partially_refunded' FROM bench_refunds r WHERE p.id = r.payment_id`);
    const n = Number((await db.raw(`SELECT count(*) AS n FROM bench_refunds`)).rows[0].n);
    await db.raw('DROP TABLE bench_refunds');
    return n;
  };

  /** `count` failed payment operations, merchant round robin, completed at `at(s)`. */
  const declines = async (prefix: string, count: number, at: string) => {
    if (count <= 0) return 0;
    await db.raw(
      `INSERT INTO operations (${opColumns})
       SELECT 'op_${prefix}${o.run}_' || s, 'payment', 'failed', 'bench', md5('${prefix}' || s::text), ?, 'merchant', (?::uuid[])[1 + (s % ?)],
              ${card(`(1 + s % ${o.cards})`)}, 0, 100 + s % 5000, 'cash', NULL,
              (ARRAY['INSUFFICIENT_BALANCE', 'QR_EXPIRED_OR_INVALID', 'CARD_NOT_ACTIVE'])[1 + s % 3], 'declined (bench)', ${at}, ${at}, NULL
         FROM generate_series(0, ? - 1) s`,
      [o.adminKeyId, o.merchantIds, o.merchantIds.length, count],
    );
    return count;
  };

  // Local midnight of today and the seconds since, by Postgres time.
  const { rows } = await db.raw(`SELECT (now() AT TIME ZONE ?)::date::timestamp AT TIME ZONE ? AS start, greatest(1, extract(epoch FROM now() - ((now() AT TIME ZONE ?)::date::timestamp AT TIME ZONE ?))::bigint - 60) AS elapsed`, [
    o.timeZone,
    o.timeZone,
    o.timeZone,
    o.timeZone,
  ]);
  const todayStart = (rows[0].start as Date).toISOString();
  const elapsed = Number(rows[0].elapsed);
  const todayAt = (expr: string) => `'${todayStart}'::timestamptz + ((${expr}) % ${elapsed}) * interval '1 second'`;

  const history = await refunds('r', `p.s >= ${o.dayCount} AND p.s % 50 = 7`, `p.created_at + interval '1 hour'`);
  const historyDeclines = await declines('d', Math.floor(o.total / 100), `now() - interval '400 days' + s * (interval '399 days' / ${Math.max(1, Math.floor(o.total / 100))})`);

  // Today: payments by four external methods, from local midnight to a minute ago.
  if (o.today > 0) {
    await db.raw(
      `INSERT INTO operations (${opColumns})
       SELECT 'op_n${o.run}_' || s, 'payment', 'succeeded', 'bench', md5('n' || s::text), ?, 'merchant', (?::uuid[])[1 + (s % ?)], ${card(`(1 + (s * 7) % ${o.cards})`)}, 0, 100 + s % 30000,
              (ARRAY['cash', 'credit_card', 'line_pay', 'wechat'])[1 + s % 4], NULL, NULL, NULL, ${todayAt('s * 97')}, ${todayAt('s * 97')}, '{}'
         FROM generate_series(0, ? - 1) s`,
      [o.adminKeyId, o.merchantIds, o.merchantIds.length, o.today],
    );
    await db.raw(
      `INSERT INTO transactions (tx_no, type, operation_id, card_id, member_id, merchant_id, raw_amount_minor, final_amount_minor, payment_method, created_at)
       SELECT 'PAYN${RUN}' || lpad(s::text, 9, '0'), 'payment', 'op_n${o.run}_' || s, ${card(`(1 + (s * 7) % ${o.cards})`)}, ${member(`(1 + (s * 7) % ${o.cards})`)},
              (?::uuid[])[1 + (s % ?)], 100 + s % 30000, 100 + s % 30000, (ARRAY['cash', 'credit_card', 'line_pay', 'wechat'])[1 + s % 4], ${todayAt('s * 97')}
         FROM generate_series(0, ? - 1) s`,
      [o.merchantIds, o.merchantIds.length, o.today],
    );
  }
  const todayRefunds = await refunds('t', `p.s >= ${o.dayCount} AND p.s % 50 = 13 AND p.s < ${o.dayCount} + ${o.today}`, todayAt('s * 31'));
  const todayDeclines = await declines('x', Math.floor(o.today / 50), todayAt('s * 53'));
  return { refunds: history, declines: historyDeclines, today_payments: o.today, today_refunds: todayRefunds, today_declines: todayDeclines };
}
