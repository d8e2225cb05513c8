import type { Knex } from 'knex';
import { verifyAuditChain } from '../../../db/queries/audit-events.js';
import { OPERATION_KINDS } from '../../../operations/index.js';
import type { PosClients } from './load.js';

/** Preloaded recharges (bench/preload.ts) are rows written by SQL, not by the engine: no audit or event. */
const PRELOADED = `o.id LIKE 'op\\_bench-%'`;

export interface InvariantResult {
  ok: boolean;
  /** Every check by name: the number of rows (or operations) that break it. */
  checks: Record<string, number>;
  /** Up to a few examples per failing check, for the report. */
  examples: Record<string, unknown[]>;
  audit: { ok: boolean; checked: number; first_broken_id: number | null };
}

const quote = (v: string) => `'${v.replaceAll("'", "''")}'`;
/** Each kind with the transaction types it writes and whether it tells the outbox of a success and of a refusal (operations/index.ts). */
const KINDS = `(VALUES ${OPERATION_KINDS.map((k) => `(${quote(k.type)}, ARRAY[${k.transactionTypes.map(quote).join(', ') || "''"}]::text[], ${!!k.events}, ${!!k.events?.failed})`).join(', ')}) AS k(type, tx_types, succeeded_event, failed_event)`;
/** Kinds whose success is exactly one transaction and whose refusal none (a transfer's debit and its end are checked with the transfer). */
const ONE_TRANSACTION = `('payment', 'refund', 'recharge', 'adjustment', 'recharge_reversal', 'transfer_credit')`;
/** A transfer's own transactions and its legs' (operations/transfer.ts): the debit, the credit, or the money back. */
const TRANSFER_LEGS = `(SELECT t.* FROM transactions t WHERE t.operation_id IN (o.id, o.id || '-credit', o.id || '-end'))`;

const CHECKS: Record<string, string> = {
  operations_not_terminal: `SELECT o.id FROM operations o WHERE o.status NOT IN ('succeeded', 'failed')`,
  succeeded_without_exactly_one_transaction: `SELECT o.id FROM operations o WHERE o.type IN ${ONE_TRANSACTION} AND o.status = 'succeeded' AND (SELECT count(*) FROM transactions t WHERE t.operation_id = o.id) <> 1`,
  failed_with_transaction: `SELECT o.id FROM operations o WHERE o.type IN ${ONE_TRANSACTION} AND o.status = 'failed' AND EXISTS (SELECT 1 FROM transactions t WHERE t.operation_id = o.id)`,
  // A transaction is of a type its operation's kind writes, and of an operation that succeeded (or of a transfer whose money came back).
  transaction_of_unsucceeded_operation: `SELECT t.tx_no FROM transactions t JOIN operations o ON o.id = t.operation_id JOIN ${KINDS} ON k.type = o.type
     WHERE (o.status <> 'succeeded' AND o.type <> 'transfer') OR NOT t.type = ANY (k.tx_types)`,
  // A transfer debits its source once exactly when it went on to its credit (continued), and then has one credit leg and one end, both ended.
  transfer_debit_not_once: `SELECT o.id FROM operations o WHERE o.type = 'transfer' AND (SELECT count(*) FROM transactions t WHERE t.operation_id = o.id) <> (o.continued_at IS NOT NULL)::int`,
  transfer_legs_not_exactly_two: `SELECT o.id FROM operations o WHERE o.type = 'transfer'
     AND (SELECT count(*) FROM operations l WHERE l.parent_id = o.id AND l.status IN ('succeeded', 'failed') AND l.id IN (o.id || '-credit', o.id || '-end'))
         <> CASE WHEN o.continued_at IS NULL THEN 0 ELSE 2 END
      OR (SELECT count(*) FROM operations l WHERE l.parent_id = o.id) <> CASE WHEN o.continued_at IS NULL THEN 0 ELSE 2 END`,
  // Its outcome is its credit's: succeeded when the credit landed, else failed with the credit's code and the money back (once) on the source.
  transfer_outcome_not_its_credit: `SELECT o.id FROM operations o JOIN operations c ON c.id = o.id || '-credit' WHERE o.type = 'transfer'
     AND (o.status <> c.status OR o.error_code IS DISTINCT FROM c.error_code
       OR (SELECT count(*) FROM transactions t WHERE t.operation_id = o.id || '-end') <> (c.status = 'failed')::int)`,
  // Σ of a transfer's moves is 0: the debit equals the credit, or the money back.
  transfer_money_not_conserved: `SELECT o.id FROM operations o WHERE o.type = 'transfer' AND o.continued_at IS NOT NULL
     AND ((SELECT coalesce(sum(CASE WHEN l.type = 'transfer_debit' THEN -l.final_amount_minor ELSE l.final_amount_minor END), 0) FROM ${TRANSFER_LEGS} l) <> 0
       OR (SELECT count(*) FROM ${TRANSFER_LEGS} l) <> 2
       OR EXISTS (SELECT 1 FROM ${TRANSFER_LEGS} l WHERE l.final_amount_minor <> o.amount_minor))`,
  failed_without_code: `SELECT o.id FROM operations o WHERE o.status = 'failed' AND o.error_code IS NULL`,
  terminal_without_completed_at: `SELECT o.id FROM operations o WHERE o.status IN ('succeeded', 'failed') AND o.completed_at IS NULL`,
  // One balance_ledger row per balance-moving transaction, for exactly its amount and sign.
  balance_moving_tx_without_one_ledger_row: `SELECT t.tx_no FROM transactions t
     WHERE (SELECT count(*) FROM balance_ledger l WHERE l.transaction_id = t.id) <> CASE WHEN t.via_balance AND t.final_amount_minor <> 0 THEN 1 ELSE 0 END
        OR EXISTS (SELECT 1 FROM balance_ledger l WHERE l.transaction_id = t.id
                    AND l.delta_minor <> CASE WHEN t.type IN ('payment', 'recharge_reversal', 'transfer_debit', 'payout') THEN -t.final_amount_minor ELSE t.final_amount_minor END)`,
  points_ledger_not_transaction: `SELECT t.tx_no FROM transactions t
     WHERE coalesce((SELECT sum(p.delta) FROM point_ledger p WHERE p.transaction_id = t.id), 0)
           <> CASE t.type WHEN 'payment' THEN t.points_earned WHEN 'refund' THEN -t.points_clawed_back ELSE 0 END`,
  card_balance_not_sum_of_ledger: `SELECT c.id FROM member_cards c WHERE c.balance_minor <> coalesce((SELECT sum(delta_minor) FROM balance_ledger l WHERE l.card_id = c.id), 0)`,
  card_points_not_sum_of_ledger: `SELECT c.id FROM member_cards c WHERE c.points <> coalesce((SELECT sum(delta) FROM point_ledger l WHERE l.card_id = c.id), 0)`,
  // Each ledger row's running total is the one before it plus its delta: no lost or interleaved update.
  balance_ledger_running_total_broken: `SELECT id FROM (SELECT id, balance_after_minor, sum(delta_minor) OVER (PARTITION BY card_id ORDER BY id) AS running FROM balance_ledger) x WHERE balance_after_minor <> running`,
  point_ledger_running_total_broken: `SELECT id FROM (SELECT id, points_after, sum(delta) OVER (PARTITION BY card_id ORDER BY id) AS running FROM point_ledger) x WHERE points_after <> running`,
  negative_balance: `SELECT id FROM member_cards WHERE balance_minor < 0 OR points < 0`,
  refunds_over_payment_final: `SELECT p.tx_no FROM transactions p WHERE p.type = 'payment' AND p.final_amount_minor < coalesce((SELECT sum(r.final_amount_minor) FROM transactions r WHERE r.original_tx_id = p.id), 0)`,
  payment_refunded_amount_not_sum_of_refunds: `SELECT p.tx_no FROM transactions p WHERE p.type = 'payment'
     AND (p.refunded_amount_minor <> coalesce((SELECT sum(r.final_amount_minor) FROM transactions r WHERE r.original_tx_id = p.id), 0)
       OR p.status <> CASE WHEN p.refunded_amount_minor = 0 THEN 'completed' WHEN p.refunded_amount_minor < p.final_amount_minor THEN 'partially_refunded' ELSE 'refunded' END)`,
  qr_token_paid_twice: `SELECT o.qr_token_hash FROM operations o WHERE o.type = 'payment' AND o.status = 'succeeded' GROUP BY o.qr_token_hash HAVING count(*) > 1`,
  // Exactly one audit event that ends each terminal operation (its .succeeded or .failed), none doubled by a re-run; an
  // operation that ends another (a transfer's end) is audited by that ending, which names it (leg_operation_id).
  terminal_operation_without_exactly_one_audit_event: `WITH a AS (
       SELECT coalesce(context->>'operation_id', object_id) AS op, action FROM audit_events WHERE action LIKE '%.succeeded' OR action LIKE '%.failed'
       UNION ALL SELECT context->>'leg_operation_id', 'ended another' FROM audit_events WHERE context->>'leg_operation_id' IS NOT NULL),
     n AS (SELECT op, action, count(*) AS n FROM a GROUP BY 1, 2)
     SELECT o.id FROM operations o WHERE o.status IN ('succeeded', 'failed') AND NOT ${PRELOADED}
        AND coalesce((SELECT sum(n.n) FROM n WHERE n.op = o.id AND n.action IN (o.type || '.succeeded', o.type || '.failed', 'ended another')), 0) <> 1`,
  // Outbox: one <type>.succeeded event per succeeded operation and one <type>.failed per failed one of kinds that tell of refusals; nothing for internal kinds.
  operation_without_exactly_its_events: `WITH e AS (SELECT data->>'operation_id' AS op, type, count(*) AS n FROM events WHERE data->>'operation_id' IS NOT NULL GROUP BY 1, 2)
     SELECT o.id FROM operations o JOIN ${KINDS} ON k.type = o.type WHERE o.status IN ('succeeded', 'failed') AND NOT ${PRELOADED} AND (
         coalesce((SELECT sum(n) FROM e WHERE e.op = o.id), 0) <> CASE WHEN (o.status = 'succeeded' AND k.succeeded_event) OR (o.status = 'failed' AND k.failed_event) THEN 1 ELSE 0 END
      OR coalesce((SELECT sum(n) FROM e WHERE e.op = o.id AND e.type = o.type || '.' || o.status), 0) <> CASE WHEN (o.status = 'succeeded' AND k.succeeded_event) OR (o.status = 'failed' AND k.failed_event) THEN 1 ELSE 0 END)`,
};

/** Runs every money invariant by SQL against Postgres (never through the engine). */
export async function checkInvariants(db: Knex, clients?: PosClients): Promise<InvariantResult> {
  const checks: Record<string, number> = {};
  const examples: Record<string, unknown[]> = {};
  for (const [name, sql] of Object.entries(CHECKS)) {
    const { rows } = await db.raw<{ rows: Record<string, unknown>[] }>(sql);
    checks[name] = rows.length;
    if (rows.length) examples[name] = rows.slice(0, 5).map((r) => Object.values(r)[0]);
  }
  if (clients) {
    const ids = [...clients.accepted.keys()];
    const rows: { id: string; status: string; error_code: string | null }[] = [];
    for (let i = 0; i < ids.length; i += 5000) rows.push(...(await db('operations').whereIn('id', ids.slice(i, i + 5000)).select('id', 'status', 'error_code')));
    const byId = new Map(rows.map((r) => [r.id, r]));
    const missing = ids.filter((id) => !byId.has(id));
    const open = rows.filter((r) => r.status !== 'succeeded' && r.status !== 'failed');
    const changed = [...clients.accepted.values()].filter((a) => {
      const row = byId.get(a.id);
      return a.seen && row && (row.status !== a.seen.status || (row.error_code ?? null) !== a.seen.code);
    });
    checks.accepted_operation_missing_in_postgres = missing.length;
    checks.accepted_operation_not_terminal = open.length;
    checks.client_was_shown_another_terminal_state = changed.length;
    checks.client_side_violations = clients.violations.length;
    if (missing.length) examples.accepted_operation_missing_in_postgres = missing.slice(0, 5);
    if (open.length) examples.accepted_operation_not_terminal = open.slice(0, 5).map((r) => `${r.id} ${r.status}`);
    if (changed.length) examples.client_was_shown_another_terminal_state = changed.slice(0, 5).map((a) => `${a.id} shown ${a.seen!.status}/${a.seen!.code} now ${byId.get(a.id)!.status}/${byId.get(a.id)!.error_code}`);
    if (clients.violations.length) examples.client_side_violations = clients.violations.slice(0, 5);
  }
  const audit = await verifyAuditChain(db);
  checks.audit_chain_broken = audit.ok ? 0 : 1;
  return { ok: Object.values(checks).every((n) => n === 0), checks, examples, audit };
}

/**
 * Waits until every listed operation (and every operation in Postgres) is terminal, or `boundMs`
 * passes. Returns how long it took and what is still open.
 */
export async function waitAllTerminal(db: Knex, ids: string[], boundMs: number): Promise<{ ms: number; open: number }> {
  const started = Date.now();
  for (;;) {
    let open = Number.POSITIVE_INFINITY;
    try {
      const all = await db('operations').whereNotIn('status', ['succeeded', 'failed']).count<{ count: string }[]>('* as count');
      open = Number(all[0]!.count);
      if (open === 0) {
        // Every accepted id must also exist (a 202 for an operation Postgres does not have would be a lie).
        const known = ids.length ? Number((await db('operations').whereIn('id', ids).count<{ count: string }[]>('* as count'))[0]!.count) : 0;
        if (known === ids.length || Date.now() - started > boundMs) return { ms: Date.now() - started, open: 0 };
      }
    } catch {
      /* Postgres may still be coming back */
    }
    if (Date.now() - started > boundMs) return { ms: Date.now() - started, open };
    await new Promise((r) => setTimeout(r, 250));
  }
}
