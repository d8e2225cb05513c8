import type { Knex } from 'knex';
import { addCheckValues, removeCheckValues } from '../check-values.js';

// The registry values of the card operation kinds (operations/card-replacement.ts, card-close.ts,
// transfer.ts), added to what each CHECK allows (REGISTRY_CHECKS in operations/index.ts): added,
// not set, so kinds other branches add in their own migrations stay allowed in either order.
const ADDED = [
  { table: 'operations', constraint: 'operations_type', column: 'type', values: ['card_replacement', 'card_close', 'transfer', 'transfer_credit', 'transfer_end'] },
  { table: 'transactions', constraint: 'transactions_type', column: 'type', values: ['payout', 'transfer_debit', 'transfer_credit'] },
  { table: 'balance_ledger', constraint: 'balance_ledger_reason', column: 'reason', values: ['card_replacement', 'payout', 'transfer_debit', 'transfer_credit', 'transfer_return'] },
  { table: 'point_ledger', constraint: 'point_ledger_reason', column: 'reason', values: ['card_replacement'] },
] as const;

export async function up(knex: Knex): Promise<void> {
  for (const c of ADDED) await addCheckValues(knex, c.table, c.constraint, c.column, c.values);
}

export async function down(knex: Knex): Promise<void> {
  for (const c of ADDED) await removeCheckValues(knex, c.table, c.constraint, c.column, c.values);
}
