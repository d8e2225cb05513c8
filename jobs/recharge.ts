import { randomUUID } from 'node:crypto';
import type { Knex } from 'knex';
import type { Deps } from '../app/deps.js';
import { isRechargeable } from '../domain/discount.js';
import { AppError } from '../domain/errors.js';
import { formatMinor } from '../domain/money.js';
import { cardChange } from '../db/queries/ledgers.js';
import { lockCardStatement, type LockedCard } from '../db/queries/member-cards.js';
import type { Read } from '../db/knex.js';
import type { OperationRecord } from '../db/queries/operations.js';
import { nextTxNoSql, transactionInsert } from '../db/queries/transactions.js';
import type { Applied } from './operation-runner.js';

/** A recharge (DESIGN.md §2): prepaid and corporate only, resulting balance within MAX_BALANCE, no points. */
export async function applyRecharge(trx: Knex.Transaction, op: OperationRecord, deps: Deps, read: Read): Promise<Applied> {
  const [card] = op.card_id ? await read<LockedCard>(lockCardStatement(op.card_id)) : [];
  if (!card || !isRechargeable(card.type)) throw new AppError('RECHARGE_NOT_ALLOWED', `Only prepaid and corporate cards can be recharged`);
  // Who is involved, and the recharge's number (reserved here; a refused recharge leaves a gap).
  const [parties] = (await read<{ owner_status: string; actor_status: string | null; tx_no: string }>({
    sql: `SELECT (SELECT status FROM member_profiles WHERE id = ?) AS owner_status,
                 (SELECT status FROM member_profiles WHERE id = ?) AS actor_status,
                 ${nextTxNoSql('recharge')} AS tx_no`,
    bindings: [card.owner_member_id, op.member_id],
  })) as [{ owner_status: string; actor_status: string | null; tx_no: string }];
  if (parties.owner_status !== 'active' || (parties.actor_status !== null && parties.actor_status !== 'active')) throw new AppError('MEMBER_SUSPENDED', 'The member is suspended');
  if (card.status !== 'active') throw new AppError('CARD_NOT_ACTIVE', `The card is ${card.status}`);
  if (card.is_expired) throw new AppError('CARD_EXPIRED', 'The card has expired');
  if (card.balance_minor + op.amount_minor > deps.config.MAX_BALANCE) {
    throw new AppError('BALANCE_LIMIT_EXCEEDED', `A card may hold at most ${formatMinor(deps.config.MAX_BALANCE)}`, { balance: formatMinor(card.balance_minor) });
  }
  const tx = {
    id: randomUUID(),
    tx_no: parties.tx_no,
    type: 'recharge' as const,
    operation_id: op.id,
    card_id: card.id,
    member_id: op.member_id ?? card.owner_member_id,
    raw_amount_minor: op.amount_minor,
    final_amount_minor: op.amount_minor,
    via_balance: true,
    payment_method: op.payment_method,
    tag: op.params.tag ?? null,
  };
  const { statements: cardWrites, after } = cardChange(trx, card, null, { transactionId: tx.id, balance: { delta: op.amount_minor, reason: 'recharge' } });
  const balance = after.balance;
  const result = { tx_no: tx.tx_no, card_id: card.id, amount: formatMinor(op.amount_minor), balance: formatMinor(balance) };
  return {
    writes: [transactionInsert(trx, tx), ...cardWrites],
    result,
    event: { merchantId: null, type: 'recharge.succeeded', data: { tx_no: tx.tx_no, card_id: card.id, amount: result.amount } },
    audit: { action: 'recharge.succeeded', objectType: 'transaction', objectId: tx.tx_no, context: { operation_id: op.id, card_id: card.id, amount_minor: op.amount_minor } },
  };
}
