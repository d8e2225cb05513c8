import type { Knex } from 'knex';

/**
 * The money invariants, by SQL against Postgres (not through the engine): waits up to `drainMs`
 * for every accepted operation to be terminal, then checks balances against ledgers, signs,
 * one transaction per succeeded operation, and refunds within their payments.
 */
export async function checkInvariants(db: Knex, drainMs: number) {
  const deadline = Date.now() + drainMs;
  let open = 0;
  for (;;) {
    open = Number((await db('operations').whereIn('status', ['queued', 'processing']).count<{ count: string }[]>('* as count'))[0]!.count);
    if (!open || Date.now() > deadline) break;
    await new Promise((r) => setTimeout(r, 500));
  }
  const one = async (sql: string) => Number(Object.values((await db.raw<{ rows: Record<string, unknown>[] }>(sql)).rows[0]!)[0]);
  const checks = {
    operations_not_terminal: open,
    cards_balance_not_ledger: await one(`SELECT count(*) FROM member_cards c WHERE c.balance_minor <> coalesce((SELECT sum(delta_minor) FROM balance_ledger l WHERE l.card_id = c.id), 0)`),
    cards_points_not_ledger: await one(`SELECT count(*) FROM member_cards c WHERE c.points <> coalesce((SELECT sum(delta) FROM point_ledger l WHERE l.card_id = c.id), 0)`),
    negative_balances: await one(`SELECT count(*) FROM member_cards WHERE balance_minor < 0`),
    succeeded_without_one_transaction: await one(`SELECT count(*) FROM operations o WHERE o.status = 'succeeded' AND (SELECT count(*) FROM transactions t WHERE t.operation_id = o.id) <> 1`),
    failed_with_transaction: await one(`SELECT count(*) FROM operations o WHERE o.status = 'failed' AND EXISTS (SELECT 1 FROM transactions t WHERE t.operation_id = o.id)`),
    refunds_over_payment: await one(`SELECT count(*) FROM transactions p WHERE p.type = 'payment' AND p.final_amount_minor < coalesce((SELECT sum(r.final_amount_minor) FROM transactions r WHERE r.original_tx_id = p.id), 0)`),
  };
  return { ok: Object.values(checks).every((n) => n === 0), ...checks };
}
