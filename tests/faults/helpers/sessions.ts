import type { Knex } from 'knex';
import { localPortsOf, type EngineProcess } from './engine.js';
import { sleep } from './scenario.js';

/** Last statements that belong to an operation's transaction (not the outbox relay's, which also runs in workers). */
const OPERATION_STATEMENT = `query ~* '"operations"|member_cards|"transactions"|balance_ledger|point_ledger|card_qr_state|audit_events|insert into "events"|membership_levels|card_bindings'
  AND query !~* 'WITH batch|webhook_deliveries'`;

/**
 * Operation transactions open right now in the scenario's database: sessions inside a
 * transaction that already wrote, whose last statement is one of an operation's. With `of`, only
 * that process's sessions (found by their client ports).
 */
export async function operationTransactions(db: Knex, of?: EngineProcess): Promise<number> {
  let ports: number[] | undefined;
  if (of) {
    ports = of.pid ? [...localPortsOf(of.pid)] : [];
    if (!ports.length) return 0;
  }
  const { rows } = await db.raw<{ rows: { n: string }[] }>(
    `SELECT count(*) AS n FROM pg_stat_activity
      WHERE datname = current_database() AND application_name <> 'fault-harness' AND xact_start IS NOT NULL AND backend_xid IS NOT NULL
        ${ports ? 'AND client_port = ANY (?::int[])' : ''} AND ${OPERATION_STATEMENT}`,
    ports ? [ports] : [],
  );
  return Number(rows[0]!.n);
}

/**
 * SIGSTOPs the process at a moment it is inside an operation transaction: freezes it, looks (a
 * stopped process's transactions stay open), thaws and tries again until one is caught. Returns
 * how many it holds (0 if none was caught in `tries`; the process is then left stopped anyway).
 */
export async function freezeInTransaction(db: Knex, proc: EngineProcess, tries = 300): Promise<number> {
  for (let i = 0; i < tries; i++) {
    proc.signal('SIGSTOP');
    const n = await operationTransactions(db, proc);
    if (n > 0 || i === tries - 1) return n;
    proc.signal('SIGCONT');
    await sleep(5 + Math.random() * 20);
  }
  return 0;
}

/** Polls until some operation transaction is open (any process), for faults that should land mid-write. */
export async function waitForOperationTransaction(db: Knex, ms = 5000): Promise<number> {
  const deadline = Date.now() + ms;
  for (;;) {
    const n = await operationTransactions(db);
    if (n > 0 || Date.now() > deadline) return n;
    await sleep(2);
  }
}
