import type { Deps } from '../app/deps.js';
import { formatMinor } from '../domain/money.js';
import { appendAudit } from '../db/queries/audit-events.js';
import { writeEvent } from '../db/queries/events.js';
import { AppError } from '../domain/errors.js';
import { dayHasEnded, generateSettlements, previousLocalDay, type SettlementRow } from '../db/queries/settlements.js';
import type { MaintenancePayload } from './names.js';

/**
 * T+1 settlement of one local day (SETTLEMENT_TZ); the previous day when none is given. Each new
 * settlement is announced (settlement.generated) and audited in the transaction that creates it.
 */
export async function runSettlement(deps: Deps, payload: MaintenancePayload): Promise<{ day: string; created: number }> {
  const day = typeof payload.day === 'string' ? payload.day : await previousLocalDay(deps.db, deps.config.SETTLEMENT_TZ);
  const merchantId = typeof payload.merchantId === 'string' ? payload.merchantId : undefined;
  const created = await settleDay(deps, day, merchantId, { actorType: 'system', actorId: 'scheduler', role: null });
  deps.logger.info({ day, created: created.length }, 'settlement run');
  return { day, created: created.length };
}

export async function settleDay(deps: Deps, day: string, merchantId: string | undefined, actor: { actorType: 'system' | 'api_key'; actorId: string; role: string | null; requestId?: string }): Promise<SettlementRow[]> {
  return deps.db.transaction(async (trx) => {
    if (!(await dayHasEnded(trx, day, deps.config.SETTLEMENT_TZ))) {
      // Settling a day still running would freeze a partial total: its later payments would never settle.
      throw new AppError('UNPROCESSABLE', `${day} has not ended yet in ${deps.config.SETTLEMENT_TZ}; settle it from the next day on`);
    }
    const rows = await generateSettlements(trx, day, deps.config.SETTLEMENT_TZ, merchantId);
    for (const s of rows) await writeEvent(trx, s.merchant_id, 'settlement.generated', settlementJson(s));
    if (rows.length) {
      await appendAudit(trx, { ...actor, action: 'settlement.generate', objectType: 'settlement_day', objectId: day, context: { merchant_id: merchantId ?? null, created: rows.map((r) => r.id) } });
    }
    return rows;
  });
}

export function settlementJson(s: SettlementRow) {
  return {
    id: s.id,
    merchant_id: s.merchant_id,
    period_date: s.period_date,
    period_start: new Date(s.period_start).toISOString(),
    period_end: new Date(s.period_end).toISOString(),
    gross_amount: formatMinor(s.gross_minor),
    refund_amount: formatMinor(s.refund_minor),
    fee_amount: formatMinor(s.fee_minor),
    recharge_amount: formatMinor(s.recharge_minor),
    net_amount: formatMinor(s.net_minor),
    payment_count: s.payment_count,
    refund_count: s.refund_count,
    recharge_count: s.recharge_count,
    status: s.status,
    created_at: new Date(s.created_at).toISOString(),
    confirmed_at: s.confirmed_at ? new Date(s.confirmed_at).toISOString() : null,
    paid_at: s.paid_at ? new Date(s.paid_at).toISOString() : null,
  };
}
