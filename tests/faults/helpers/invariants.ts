import type { Knex } from 'knex';
import { verifyAuditChain } from '../../../db/queries/audit-events.js';
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

const CHECKS: Record<string, string> = {
  operations_not_terminal: `SELECT o.id FROM operations o WHERE o.status NOT IN ('succeeded', 'failed')`,
  succeeded_without_exactly_one_transaction: `SELECT o.id FROM operations o WHERE o.status = 'succeeded' AND (SELECT count(*) FROM transactions t WHERE t.operation_id = o.id) <> 1`,
  failed_with_transaction: `SELECT o.id FROM operations o WHERE o.status = 'failed' AND EXISTS (SELECT 1 FROM transactions t WHERE t.operation_id = o.id)`,
  transaction_of_unsucceeded_operation: `SELECT t.tx_no FROM transactions t JOIN operations o ON o.id = t.operation_id WHERE o.status <> 'succeeded' OR o.type <> t.type`,
  failed_without_code: `SELECT o.id FROM operations o WHERE o.status = 'failed' AND o.error_code IS NULL`,
  terminal_without_completed_at: `SELECT o.id FROM operations o WHERE o.status IN ('succeeded', 'failed') AND o.completed_at IS NULL`,
  // One balance_ledger row per balance-moving transaction, for exactly its amount and sign.
  balance_moving_tx_without_one_ledger_row: `SELECT t.tx_no FROM transactions t
     WHERE (SELECT count(*) FROM balance_ledger l WHERE l.transaction_id = t.id) <> CASE WHEN t.via_balance AND t.final_amount_minor > 0 THEN 1 ELSE 0 END
        OR EXISTS (SELECT 1 FROM balance_ledger l WHERE l.transaction_id = t.id
                    AND l.delta_minor <> CASE t.type WHEN 'payment' THEN -t.final_amount_minor ELSE t.final_amount_minor END)`,
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
  // Exactly one audit event per terminal operation (its .succeeded or .failed), none doubled by a re-run.
  terminal_operation_without_exactly_one_audit_event: `WITH a AS (
       SELECT coalesce(context->>'operation_id', object_id) AS op, count(*) AS n FROM audit_events
        WHERE action IN ('payment.succeeded', 'payment.failed', 'refund.succeeded', 'refund.failed', 'recharge.succeeded', 'recharge.failed') GROUP BY 1)
     SELECT o.id FROM operations o LEFT JOIN a ON a.op = o.id WHERE o.status IN ('succeeded', 'failed') AND NOT ${PRELOADED} AND coalesce(a.n, 0) <> 1`,
  // Outbox: one <type>.succeeded event per succeeded operation, one payment.failed per failed payment, nothing else.
  operation_without_exactly_its_events: `WITH e AS (SELECT data->>'operation_id' AS op, type, count(*) AS n FROM events WHERE data->>'operation_id' IS NOT NULL GROUP BY 1, 2)
     SELECT o.id FROM operations o WHERE o.status IN ('succeeded', 'failed') AND NOT ${PRELOADED} AND (
         coalesce((SELECT sum(n) FROM e WHERE e.op = o.id), 0) <> CASE WHEN o.status = 'succeeded' OR o.type = 'payment' THEN 1 ELSE 0 END
      OR coalesce((SELECT sum(n) FROM e WHERE e.op = o.id AND e.type = o.type || '.' || o.status), 0) <> CASE WHEN o.status = 'succeeded' OR o.type = 'payment' THEN 1 ELSE 0 END)`,
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
