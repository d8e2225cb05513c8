import type { Knex } from 'knex';

/**
 * Four eyes (API.md "Operator money tools"): an operation may wait in `requires_approval` (open,
 * not enqueued, never taken by the reconciler or a batch) and end `rejected` (terminal, like
 * `failed`, with a code: APPROVAL_REJECTED).
 */
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`ALTER TABLE operations
    DROP CONSTRAINT operations_status,
    DROP CONSTRAINT operations_terminal_complete,
    DROP CONSTRAINT operations_failed_has_code,
    ADD CONSTRAINT operations_status CHECK (status IN ('requires_approval', 'queued', 'processing', 'succeeded', 'failed', 'rejected')) NOT VALID,
    ADD CONSTRAINT operations_terminal_complete CHECK ((status IN ('succeeded', 'failed', 'rejected')) = (completed_at IS NOT NULL)) NOT VALID,
    ADD CONSTRAINT operations_failed_has_code CHECK ((status IN ('failed', 'rejected')) = (error_code IS NOT NULL)) NOT VALID`);
  for (const constraint of ['operations_status', 'operations_terminal_complete', 'operations_failed_has_code']) {
    await knex.raw('ALTER TABLE operations VALIDATE CONSTRAINT ??', [constraint]);
  }
}

export async function down(knex: Knex): Promise<void> {
  // Only while no operation waits for approval or was rejected.
  await knex.raw(`ALTER TABLE operations
    DROP CONSTRAINT operations_status,
    DROP CONSTRAINT operations_terminal_complete,
    DROP CONSTRAINT operations_failed_has_code,
    ADD CONSTRAINT operations_status CHECK (status IN ('queued', 'processing', 'succeeded', 'failed')),
    ADD CONSTRAINT operations_terminal_complete CHECK ((status IN ('succeeded', 'failed')) = (completed_at IS NOT NULL)),
    ADD CONSTRAINT operations_failed_has_code CHECK ((status = 'failed') = (error_code IS NOT NULL))`);
}
