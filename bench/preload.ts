import { createHash } from 'node:crypto';
import type { Knex } from 'knex';
import { createApiKey } from '../db/queries/api-keys.js';

/**
 * Bulk preload for the bench, in SQL (generate_series), so 10,000 cards take seconds, not minutes.
 * Every card is a prepaid card with `members` bound members (member 0 owns it) and one live QR
 * token per (card, member): the plain tokens are derived from a seed, so the load generator can
 * present them without asking the API, and each is used once. Balances arrive through recharge
 * operations, transactions and ledger rows, so balance = Σ ledger holds from the start.
 */
export interface Preload {
  run: string;
  cards: number;
  members: number;
  merchantKeys: string[];
  appKey: string;
  cardId(c: number): string;
  /** Member m of card c (0 owns it). */
  memberId(c: number, m: number): string;
  /** The preloaded QR of (card, member); none with `qrTokens: false`. */
  qr(c: number, m: number): string;
}

export interface PreloadOptions {
  cards: number;
  membersPerCard: number;
  merchants: number;
  balanceMinor: number;
  qrTtlS: number;
  /** A live QR per (card, member), default true; false when the load issues its own (`--qr fresh`). */
  qrTokens?: boolean;
}

// Version 4 and variant bits set: the API's UUID fields (member_id) take RFC 9562 UUIDs only.
export const uuidSql = (expr: string) => `(overlay(overlay(md5(${expr}) placing '4' from 13 for 1) placing '8' from 17 for 1)::uuid)`;
/** uuidSql's UUID, in JS. */
export function md5Uuid(text: string): string {
  const hex = createHash('md5').update(text).digest('hex');
  return `${hex.slice(0, 12)}4${hex.slice(13, 16)}8${hex.slice(17)}`.replace(/^(.{8})(.{4})(.{4})(.{4})(.{12})$/, '$1-$2-$3-$4-$5');
}

/** Member m of card c (of `members` per card): `+` and 22 digits, the run's start in ms, then c·members + m. */
const benchPhoneSql = (run: string, members: number, c: string, m: string) => `'+${parseInt(run, 36)}' || lpad((${c} * ${members} + ${m})::text, 9, '0')`;
const benchEmailSql = (run: string, c: string, m: string) => `'bench-${run}-' || ${c} || '-' || ${m} || '@bench.example'`;

/** The phone and email bench/preload.ts gives member m of card c in run `run`, for lookups. */
export const benchPhone = (run: string, members: number, c: number, m: number) => `+${parseInt(run, 36)}${String(c * members + m).padStart(9, '0')}`;
export const benchEmail = (run: string, c: number, m: number) => `bench-${run}-${c}-${m}@bench.example`;

export async function preload(db: Knex, o: PreloadOptions): Promise<Preload> {
  const run = Date.now().toString(36);
  const seed = `bench-${run}`;
  const merchantKeys: string[] = [];
  for (let i = 0; i < o.merchants; i++) {
    const [merchant] = await db('merchants').insert({ code: `B${run}${i}`.toUpperCase().slice(0, 32), name: `Bench merchant ${i}`, fee_rate: '0.0060' }).returning('id');
    merchantKeys.push((await createApiKey(db, { role: 'merchant', merchantId: merchant.id, name: 'bench' })).key);
  }
  const admin = await createApiKey(db, { role: 'admin', name: 'bench preload' });
  const appKey = (await createApiKey(db, { role: 'app', name: 'bench app' })).key;

  const member = (c: string, m: string) => uuidSql(`'${seed}-m-' || ${c} || '-' || ${m}`);
  const card = (c: string) => uuidSql(`'${seed}-c-' || ${c}`);
  const tx = (c: string) => uuidSql(`'${seed}-t-' || ${c}`);
  const bind = [o.cards, o.membersPerCard];
  await db.transaction(async (trx) => {
    // Phones and emails are unique among members, also across runs into one database: both carry the run.
    await trx.raw(
      `INSERT INTO member_profiles (id, member_no, name, phone, email)
       SELECT ${member('c', 'm')}, 'B${run}-' || c || '-' || m, 'Bench ' || c || '-' || m, ${benchPhoneSql(run, o.membersPerCard, 'c', 'm')}, ${benchEmailSql(run, 'c', 'm')}
         FROM generate_series(1, ?) c, generate_series(0, ? - 1) m`,
      bind,
    );
    await trx.raw(
      `INSERT INTO member_cards (id, card_no, type, owner_member_id, balance_minor)
       SELECT ${card('c')}, '8809' || lpad(c::text, 7, '0') || substr(md5('${seed}'), 1, 5), 'prepaid', ${member('c', '0')}, ?
         FROM generate_series(1, ?) c`,
      [o.balanceMinor, o.cards],
    );
    await trx.raw(
      `INSERT INTO card_bindings (card_id, member_id, role)
       SELECT ${card('c')}, ${member('c', 'm')}, CASE WHEN m = 0 THEN 'owner' ELSE 'member' END
         FROM generate_series(1, ?) c, generate_series(0, ? - 1) m`,
      bind,
    );
    await trx.raw(
      `INSERT INTO operations (id, type, status, principal, request_hash, api_key_id, actor_role, card_id, partition, amount_minor, payment_method, completed_at, result)
       SELECT 'op_${seed}_' || c, 'recharge', 'succeeded', 'key:${admin.row.id}', md5(c::text), ?, 'admin', ${card('c')}, 0, ?, 'bank_transfer', now(), '{}'
         FROM generate_series(1, ?) c`,
      [admin.row.id, o.balanceMinor, o.cards],
    );
    await trx.raw(
      `INSERT INTO transactions (id, tx_no, type, operation_id, card_id, member_id, raw_amount_minor, final_amount_minor, via_balance, payment_method)
       SELECT ${tx('c')}, 'RCH${run.toUpperCase()}' || lpad(c::text, 8, '0'), 'recharge', 'op_${seed}_' || c, ${card('c')}, ${member('c', '0')}, ?, ?, true, 'bank_transfer'
         FROM generate_series(1, ?) c`,
      [o.balanceMinor, o.balanceMinor, o.cards],
    );
    await trx.raw(
      `INSERT INTO balance_ledger (card_id, transaction_id, delta_minor, balance_after_minor, reason)
       SELECT ${card('c')}, ${tx('c')}, ?, ?, 'recharge' FROM generate_series(1, ?) c`,
      [o.balanceMinor, o.balanceMinor, o.cards],
    );
    if (o.qrTokens !== false) await trx.raw(
      `INSERT INTO card_qr_state (card_id, member_id, token_hash, expires_at)
       SELECT ${card('c')}, ${member('c', 'm')},
              encode(sha256(convert_to('mpsq_' || translate(encode(sha256(convert_to('${seed}-q-' || c || '-' || m, 'UTF8')), 'base64'), '+/=', '-_'), 'UTF8')), 'hex'),
              now() + make_interval(secs => ?)
         FROM generate_series(1, ?) c, generate_series(0, ? - 1) m`,
      [o.qrTtlS, o.cards, o.membersPerCard],
    );
  });
  await db.raw('ANALYZE');

  const { rows } = await db.raw<{ rows: { c: number; id: string }[] }>(`SELECT c, ${card('c')}::text AS id FROM generate_series(1, ?) c`, [o.cards]);
  const ids = new Map(rows.map((r) => [r.c, r.id]));
  return {
    run,
    cards: o.cards,
    members: o.membersPerCard,
    merchantKeys,
    appKey,
    cardId: (c) => ids.get(c)!,
    memberId: (c, m) => md5Uuid(`${seed}-m-${c}-${m}`),
    qr: (c, m) => `mpsq_${createHash('sha256').update(`${seed}-q-${c}-${m}`).digest('base64url')}`,
  };
}
