import { randomUUID } from 'node:crypto';
import type { Knex } from 'knex';
import type { Deps } from '../app/deps.js';
import { decideRecharge, rechargeNotAllowed } from '../domain/decide-recharge.js';
import { AppError } from '../domain/errors.js';
import { formatMinor } from '../domain/money.js';
import { isRefusal } from '../domain/decision.js';
import { cardChange } from '../db/queries/ledgers.js';
import { lockCardStatement, type LockedCard } from '../db/queries/member-cards.js';
import type { Read } from '../db/knex.js';
import type { OperationRecord } from '../db/queries/operations.js';
import { nextTxNoSql, transactionInsert } from '../db/queries/transactions.js';
import type { Applied } from './operation-runner.js';

/** A recharge (DESIGN.md §2): prepaid and corporate only, resulting balance within MAX_BALANCE, no points. */
export async function applyRecharge(trx: Knex.Transaction, op: OperationRecord, deps: Deps, read: Read): Promise<Applied> {
  const [card] = op.card_id ? await read<LockedCard>(lockCardStatement(op.card_id)) : [];
  const notAllowed = rechargeNotAllowed(card);
  if (notAllowed || !card) throw new AppError(notAllowed!.refused, notAllowed!.message);
  // Who is involved, and the recharge's number (reserved here; a refused recharge leaves a gap).
  const [parties] = (await read<{ owner_status: string; actor_status: string | null; tx_no: string }>({
    sql: `SELECT (SELECT status FROM member_profiles WHERE id = ?) AS owner_status,
                 (SELECT status FROM member_profiles WHERE id = ?) AS actor_status,
                 ${nextTxNoSql('recharge')} AS tx_no`,
    bindings: [card.owner_member_id, op.member_id],
  })) as [{ owner_status: string; actor_status: string | null; tx_no: string }];
  // An actor without a profile is no actor: only the owner is then checked, as always.
  const plan = decideRecharge({ card, ownerStatus: parties.owner_status, actorStatus: parties.actor_status ?? undefined }, { amountMinor: op.amount_minor }, { maxBalanceMinor: deps.config.MAX_BALANCE });
  if (isRefusal(plan)) throw new AppError(plan.refused, plan.message, plan.details);
  const tx = {
    id: randomUUID(),
    tx_no: parties.tx_no,
    type: 'recharge' as const,
    operation_id: op.id,
    card_id: card.id,
    member_id: op.member_id ?? card.owner_member_id,
    raw_amount_minor: plan.amountMinor,
    final_amount_minor: plan.amountMinor,
    via_balance: true,
    payment_method: op.payment_method,
    tag: op.params.tag ?? null,
  };
  const { statements: cardWrites } = cardChange(trx, card, { transactionId: tx.id, balance: { delta: plan.balanceDeltaMinor, reason: 'recharge' } });
  const result = { tx_no: tx.tx_no, card_id: card.id, amount: formatMinor(plan.amountMinor), balance: formatMinor(plan.balanceAfterMinor) };
  return {
    writes: [transactionInsert(trx, tx), ...cardWrites],
    result,
    event: { merchantId: null, type: 'recharge.succeeded', data: { tx_no: tx.tx_no, card_id: card.id, amount: result.amount } },
    audit: { action: 'recharge.succeeded', objectType: 'transaction', objectId: tx.tx_no, context: { operation_id: op.id, card_id: card.id, amount_minor: op.amount_minor } },
  };
}
