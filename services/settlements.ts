import type { Deps } from '../app/deps.js';
import type { Db } from '../db/knex.js';
import { advanceSettlement, findSettlement, listSettlements, type SettlementRow } from '../db/queries/settlements.js';
import { conflict, notFound } from '../domain/errors.js';
import type { Caller } from '../domain/principal.js';
import { settleDay } from '../jobs/settlement.js';
import { auditBy } from './audit.js';
import { isUuid } from './card-access.js';

/**
 * Settles one local day now, for every merchant with activity or one merchant. Idempotent per
 * merchant and day: existing settlements are listed, not redone; `created` counts the new ones.
 */
export async function runSettlementDay(deps: Deps, caller: Caller, input: { date: string; merchant_id?: string }): Promise<{ created: number; settlements: SettlementRow[] }> {
  const { principal } = caller;
  const created = await settleDay(deps, input.date, input.merchant_id, { actorType: 'api_key', actorId: principal.keyId, role: principal.role, requestId: caller.requestId });
  // Read on the primary: the settlements just created must be in the answer.
  const settlements = await listSettlements(deps.db, { merchantId: input.merchant_id, from: input.date, to: input.date, limit: 10_000 });
  return { created: created.length, settlements };
}

/** How an admin moves a settlement on: pending → confirmed → paid, each step once. */
const STEPS = {
  confirm: { from: 'pending', action: 'settlement.confirm' },
  'mark-paid': { from: 'confirmed', action: 'settlement.mark_paid' },
} as const;

export type SettlementStep = keyof typeof STEPS;
export const SETTLEMENT_STEPS = Object.keys(STEPS) as SettlementStep[];

/** Takes one step, audited; 404 for an unknown settlement, 409 for one that is not where the step starts. */
export async function advanceSettlementBy(db: Db, caller: Caller, id: string, step: SettlementStep): Promise<SettlementRow> {
  const { from, action } = STEPS[step];
  const row = await db.transaction(async (trx) => {
    const moved = await advanceSettlement(trx, id, from);
    if (moved) await auditBy(trx, caller, { action, objectType: 'settlement', objectId: id });
    return moved;
  });
  if (row) return row;
  const existing = await findSettlement(db, id);
  if (!existing) throw notFound('settlement');
  throw conflict(`Only a ${from} settlement can be moved by ${step}; this one is ${existing.status}`);
}

/** A settlement of the caller's merchant (from the replica when there is one); any other is 404. */
export async function merchantSettlement({ dbRead }: Deps, caller: Caller, id: string): Promise<SettlementRow> {
  const row = isUuid(id) ? await findSettlement(dbRead, id) : undefined;
  if (!row || row.merchant_id !== caller.principal.merchantId) throw notFound('settlement');
  return row;
}
