import type { Knex } from 'knex';

// Audit events past AUDIT_RETENTION_DAYS are archived (deleted) from the start of their chain. Each
// archiving step appends a checkpoint in the same transaction: the last archived event's id and hash
// and how many of the chain's events are archived in all. Verification starts each chain at its
// newest checkpoint. Append-only like audit_events: the history of checkpoints is evidence too.
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`CREATE TABLE audit_checkpoints (
    id bigserial PRIMARY KEY,
    chain text NOT NULL,
    last_id bigint NOT NULL,
    last_hash text NOT NULL,
    archived_total bigint NOT NULL CHECK (archived_total > 0),
    created_at timestamptz NOT NULL DEFAULT now()
  )`);
  await knex.raw('CREATE INDEX audit_checkpoints_chain ON audit_checkpoints (chain, id DESC)');
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw('DROP TABLE audit_checkpoints');
}
