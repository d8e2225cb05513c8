import type { Deps } from '../app/deps.js';
import { MAINTENANCE_JOBS, type MaintenanceJob, type MaintenancePayload, type OperationPayload, type WebhookPayload } from './names.js';
import { assertKindsDistinct, OPERATION_TYPES } from '../operations/index.js';
import { runOperation } from '../operations/runner.js';
import { runReconcile } from './reconcile.js';
import { runRotateQr } from './rotate-qr.js';
import { runSettlement } from './settlement.js';
import { runCleanup } from './cleanup.js';
import { runDetectAnomalies } from './detect-anomalies.js';
import { runRelayOutbox } from './relay-outbox.js';
import { runReportRollup } from './report-rollup.js';
import { runDeliverWebhook } from './deliver-webhook.js';

/** A job handler (CONVENTIONS.md 1): dependencies and the payload's ids in, a result out. */
export type Handler<P> = (deps: Deps, payload: P) => Promise<unknown>;

/**
 * A card operation's job, whatever its kind (the job name is the operation type): its operation,
 * with the others queued on its partition (operations/runner.ts).
 */
export const runCardOperation: Handler<OperationPayload> = (deps, payload) => runOperation(deps, payload.operationId);

export const maintenanceHandlers: Partial<Record<MaintenanceJob, Handler<MaintenancePayload>>> = {
  reconcile: runReconcile,
  'rotate-qr': runRotateQr,
  settlement: runSettlement,
  cleanup: runCleanup,
  'detect-anomalies': runDetectAnomalies,
  'relay-outbox': runRelayOutbox,
  'report-rollup': runReportRollup,
};

export const deliverWebhook: Handler<WebhookPayload> = runDeliverWebhook;

/** Boot fails, saying what to add, when a known job has no handler or a handler has no job. */
export function assertHandlersComplete(): void {
  assertKindsDistinct();
  const problems: string[] = [];
  if (!OPERATION_TYPES.length) problems.push('no operation kinds in operations/index.ts');
  for (const j of MAINTENANCE_JOBS) if (!maintenanceHandlers[j]) problems.push(`maintenance job "${j}" has no handler in jobs/index.ts`);
  for (const j of Object.keys(maintenanceHandlers)) if (!(MAINTENANCE_JOBS as readonly string[]).includes(j)) problems.push(`handler "${j}" is not listed in MAINTENANCE_JOBS (jobs/names.ts)`);
  if (problems.length) throw new Error(`Job registry incomplete:\n  - ${problems.join('\n  - ')}`);
}
