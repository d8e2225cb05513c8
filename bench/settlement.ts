import { cpus, totalmem } from 'node:os';
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { benchStores } from './engine.js';
import { createKnex, migrateLatest } from '../db/knex.js';
import { generateSettlements } from '../db/queries/settlements.js';

/**
 * Settlement at volume: 100,000 transactions (90,000 payments, 10,000 partial refunds) of one
 * local day over 50 merchants, bulk-inserted with generate_series, then generateSettlements for
 * that day timed (first run, and re-runs that must create nothing). Run: `npx tsx bench/settlement.ts`.
 * Uses DATABASE_URL when set (its rows are removed afterwards), else an embedded stack in a temp dir.
 */
const MERCHANTS = 50;
const CARDS = 1_000;
const PAYMENTS = 90_000;
const REFUNDS = 10_000;
const DAY = '2001-02-03'; // far from any real data in a shared database
const TZ = 'Asia/Taipei';
const RERUNS = 3;

async function main(): Promise<void> {
  const stores = await benchStores('bench-settlement', false);
  const { databaseUrl } = stores;
  const db = createKnex(databaseUrl, 4, (err) => console.error('postgres client error', err.message));
  const tag = randomBytes(4).toString('hex').toUpperCase();
  try {
    await migrateLatest(db);
    const steps: string[] = [];
    const step = async (name: string, sql: string, bindings: readonly (string | number)[]) => {
      const t = performance.now();
      await db.raw(sql, bindings);
      steps.push(`${name} ${(performance.now() - t).toFixed(0)}`);
    };
    const t0 = performance.now();
    await step(
      'merchants',
      `INSERT INTO merchants (code, name, fee_rate)
       SELECT 'BENCH' || ? || '_' || lpad(g::text, 3, '0'), 'Bench merchant ' || g, (g % 11) * 0.001
         FROM generate_series(1, ?) g`,
      [tag, MERCHANTS],
    );
    await step('members', `INSERT INTO member_profiles (name) SELECT 'bench ' || ? || ' ' || g FROM generate_series(1, ?) g`, [tag, CARDS]);
    await step(
      'cards',
      `INSERT INTO member_cards (card_no, type, owner_member_id)
       SELECT 'BENCH' || ? || lpad(row_number() OVER (ORDER BY id)::text, 6, '0'), 'standard', id
         FROM member_profiles WHERE name LIKE 'bench ' || ? || ' %'`,
      [tag, tag],
    );
    // Operations first (transactions reference them), then payments spread over the local day.
    await step(
      'payment ops',
      `WITH m AS (SELECT array_agg(id ORDER BY code) AS ids FROM merchants WHERE code LIKE 'BENCH' || ? || '\\_%'),
            c AS (SELECT array_agg(id ORDER BY card_no) AS ids, array_agg(owner_member_id ORDER BY card_no) AS owners FROM member_cards WHERE card_no LIKE 'BENCH' || ? || '%'),
            d AS (SELECT CAST(? AS date)::timestamp AT TIME ZONE ? AS start_at)
       INSERT INTO operations (id, type, status, principal, request_hash, api_key_id, actor_role, merchant_id, member_id, card_id, partition, amount_minor, created_at, completed_at)
       SELECT 'op_bench' || ? || '_p' || g, 'payment', 'succeeded', 'merchant:' || m.ids[1 + g % ?], md5(g::text), gen_random_uuid(), 'merchant',
              m.ids[1 + g % ?], c.owners[1 + g % ?], c.ids[1 + g % ?], 0, 100 + (g * 7919) % 500000,
              d.start_at + make_interval(secs => g * 86399.0 / ?), d.start_at + make_interval(secs => g * 86399.0 / ?)
         FROM generate_series(1, ?) g, m, c, d`,
      [tag, tag, DAY, TZ, tag, MERCHANTS, MERCHANTS, CARDS, CARDS, PAYMENTS, PAYMENTS, PAYMENTS],
    );
    await step(
      'payments',
      `INSERT INTO transactions (tx_no, type, operation_id, card_id, member_id, merchant_id, raw_amount_minor, final_amount_minor, payment_method, created_at)
       SELECT 'PAYBENCH' || ? || lpad(split_part(o.id, '_p', 2), 6, '0'), 'payment', o.id, o.card_id, o.member_id, o.merchant_id, o.amount_minor, o.amount_minor, 'cash', o.created_at
         FROM operations o WHERE o.id LIKE 'op\\_bench' || ? || '\\_p%'`,
      [tag, tag],
    );
    // Partial refunds of every ninth payment (half its amount), a quarter second after it: same local day.
    await step(
      'refund ops',
      `INSERT INTO operations (id, type, status, principal, request_hash, api_key_id, actor_role, merchant_id, member_id, card_id, partition, amount_minor, original_tx_no, created_at, completed_at)
       SELECT 'op_bench' || ? || '_r' || h, 'refund', 'succeeded', 'merchant:' || t.merchant_id, md5('r' || h), gen_random_uuid(), 'merchant',
              t.merchant_id, t.member_id, t.card_id, 0, greatest(t.final_amount_minor / 2, 1), t.tx_no, t.created_at + interval '250 ms', t.created_at + interval '250 ms'
         FROM generate_series(1, ?) h
         JOIN transactions t ON t.tx_no = 'PAYBENCH' || ? || lpad((h * 9)::text, 6, '0')`,
      [tag, REFUNDS, tag],
    );
    await step(
      'refunds',
      `INSERT INTO transactions (tx_no, type, operation_id, card_id, member_id, merchant_id, original_tx_id, raw_amount_minor, final_amount_minor, created_at)
       SELECT 'REFBENCH' || ? || split_part(o.id, '_r', 2), 'refund', o.id, o.card_id, o.member_id, o.merchant_id, t.id, o.amount_minor, o.amount_minor, o.created_at
         FROM operations o JOIN transactions t ON t.tx_no = o.original_tx_no
        WHERE o.id LIKE 'op\\_bench' || ? || '\\_r%'`,
      [tag, tag],
    );
    await step(
      'refunded marks',
      `UPDATE transactions p SET refunded_amount_minor = r.final_amount_minor, status = 'partially_refunded'
         FROM transactions r WHERE r.original_tx_id = p.id AND r.tx_no LIKE 'REFBENCH' || ? || '%'`,
      [tag],
    );
    await step('analyze', 'ANALYZE transactions', []);
    const loadMs = performance.now() - t0;

    const { rows: counted } = await db.raw<{ rows: { payments: number; refunds: number; gross: number; refunded: number }[] }>(
      `SELECT count(*) FILTER (WHERE type = 'payment')::bigint AS payments, count(*) FILTER (WHERE type = 'refund')::bigint AS refunds,
              coalesce(sum(final_amount_minor) FILTER (WHERE type = 'payment'), 0)::bigint AS gross,
              coalesce(sum(final_amount_minor) FILTER (WHERE type = 'refund'), 0)::bigint AS refunded
         FROM transactions WHERE tx_no LIKE 'PAYBENCH' || ? || '%' OR tx_no LIKE 'REFBENCH' || ? || '%'`,
      [tag, tag],
    );
    const data = counted[0]!;
    const { rows: totalRows } = await db.raw<{ rows: { n: number }[] }>('SELECT count(*)::bigint AS n FROM transactions');

    const t1 = performance.now();
    const created = await generateSettlements(db, DAY, TZ);
    const firstMs = performance.now() - t1;
    const mine = created.filter((s) => s.payment_count > 0);
    const rerunMs: number[] = [];
    for (let i = 0; i < RERUNS; i++) {
      const t = performance.now();
      const again = await generateSettlements(db, DAY, TZ);
      rerunMs.push(performance.now() - t);
      if (again.length !== 0) throw new Error(`re-run ${i + 1} created ${again.length} settlements`);
    }

    const sumGross = mine.reduce((s, r) => s + r.gross_minor, 0);
    const sumRefunds = mine.reduce((s, r) => s + r.refund_minor, 0);
    const sumPayments = mine.reduce((s, r) => s + r.payment_count, 0);
    const sumRefundCount = mine.reduce((s, r) => s + r.refund_count, 0);
    const ok = mine.length === MERCHANTS && sumGross === data.gross && sumRefunds === data.refunded && sumPayments === data.payments && sumRefundCount === data.refunds;
    const { rows: version } = await db.raw<{ rows: { v: string }[] }>(`SELECT current_setting('server_version') AS v`);
    const cpu = cpus();

    console.log('MPS settlement bench');
    console.log(`  machine:       ${cpu.length} × ${cpu[0]?.model ?? 'unknown CPU'}, ${(totalmem() / 2 ** 30).toFixed(1)} GiB RAM, Node ${process.version}, Postgres ${version[0]!.v}${stores.embedded ? ' (embedded, fsync on)' : ' (DATABASE_URL)'}`);
    console.log(`  data:          ${data.payments} payments + ${data.refunds} refunds = ${data.payments + data.refunds} transactions on local day ${DAY} (${TZ}), ${MERCHANTS} merchants, ${CARDS} cards; table holds ${totalRows[0]!.n} rows`);
    console.log(`  bulk load:     ${loadMs.toFixed(0)} ms (generate_series; ms per step: ${steps.join(', ')})`);
    console.log(`  settle day:    ${firstMs.toFixed(1)} ms → ${created.length} settlements created`);
    console.log(`  re-run:        ${rerunMs.map((m) => m.toFixed(1)).join(' / ')} ms → 0 created each time`);
    console.log(`  check:         Σ gross ${data.gross} = ${sumGross}, Σ refunds ${data.refunded} = ${sumRefunds}, counts ${sumPayments}/${sumRefundCount} → ${ok ? 'OK' : 'MISMATCH'}`);
    if (!ok) process.exitCode = 1;
  } finally {
    if (!stores.embedded) {
      // A shared database: leave it as it was found.
      await db.raw(`DELETE FROM settlements WHERE merchant_id IN (SELECT id FROM merchants WHERE code LIKE 'BENCH' || ? || '\\_%')`, [tag]);
      await db.raw(`DELETE FROM transactions WHERE type = 'refund' AND tx_no LIKE 'REFBENCH' || ? || '%'`, [tag]);
      await db.raw(`DELETE FROM transactions WHERE tx_no LIKE 'PAYBENCH' || ? || '%'`, [tag]);
      await db.raw(`DELETE FROM operations WHERE id LIKE 'op\\_bench' || ? || '\\_%'`, [tag]);
      await db.raw(`DELETE FROM member_cards WHERE card_no LIKE 'BENCH' || ? || '%'`, [tag]);
      await db.raw(`DELETE FROM member_profiles WHERE name LIKE 'bench ' || ? || ' %'`, [tag]);
      await db.raw(`DELETE FROM merchants WHERE code LIKE 'BENCH' || ? || '\\_%'`, [tag]);
    }
    await db.destroy();
    await stores.stop();
  }
}

main().then(
  () => process.exit(process.exitCode ?? 0),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
