import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Knex } from 'knex';

const CARDS = 10_000;

/**
 * The yardstick: pgbench running a charge-shaped transaction (lock a card row, debit it, write a
 * ledger row and a transaction row, finish an operation row) on scratch tables of the same
 * Postgres. engine charges/s ÷ pgbench tx/s is the figure that travels between machines.
 */
export async function runPgbench(db: Knex, databaseUrl: string, seconds: number): Promise<{ tps: number; clients: number; seconds: number }> {
  await db.raw(`DROP TABLE IF EXISTS pgb_cards, pgb_ledger, pgb_tx, pgb_ops`);
  await db.raw(`CREATE TABLE pgb_cards (id int PRIMARY KEY, balance bigint NOT NULL CHECK (balance >= 0), points bigint NOT NULL DEFAULT 0)`);
  await db.raw(`CREATE TABLE pgb_ledger (id bigserial PRIMARY KEY, card_id int NOT NULL, delta bigint NOT NULL, after bigint NOT NULL, created_at timestamptz DEFAULT now())`);
  await db.raw(`CREATE TABLE pgb_tx (id bigserial PRIMARY KEY, card_id int NOT NULL, amount bigint NOT NULL, created_at timestamptz DEFAULT now())`);
  await db.raw(`CREATE TABLE pgb_ops (id bigserial PRIMARY KEY, status text NOT NULL DEFAULT 'queued', completed_at timestamptz)`);
  await db.raw(`INSERT INTO pgb_cards SELECT g, 1000000000 FROM generate_series(1, ${CARDS}) g`);
  const script = join(tmpdir(), `mps-pgbench-${process.pid}.sql`);
  writeFileSync(
    script,
    `\\set card random(1, ${CARDS})
\\set amount random(100, 30000)
BEGIN;
INSERT INTO pgb_ops DEFAULT VALUES RETURNING id \\gset
SELECT balance FROM pgb_cards WHERE id = :card FOR UPDATE;
INSERT INTO pgb_tx (card_id, amount) VALUES (:card, :amount);
UPDATE pgb_cards SET balance = balance - :amount, points = points + :amount / 100 WHERE id = :card;
INSERT INTO pgb_ledger (card_id, delta, after) VALUES (:card, -:amount, 0);
UPDATE pgb_ops SET status = 'succeeded', completed_at = now() WHERE id = :id;
END;
`,
  );
  const clients = 16;
  const run = spawnSync('pgbench', ['-n', '-c', String(clients), '-j', '2', '-T', String(seconds), '-f', script, databaseUrl], { encoding: 'utf8' });
  await db.raw(`DROP TABLE IF EXISTS pgb_cards, pgb_ledger, pgb_tx, pgb_ops`);
  const tps = Number(/tps = ([\d.]+)/.exec(run.stdout)?.[1]);
  if (!tps) throw new Error(`pgbench failed: ${run.stderr || run.stdout}`);
  return { tps: Math.round(tps), clients, seconds };
}
