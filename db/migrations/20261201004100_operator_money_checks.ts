import type { Knex } from 'knex';
import { setCheckValues } from '../check-values.js';

/**
 * The operator money tools' kinds (operations/adjustment.ts, operations/recharge-reversal.ts):
 * every CHECK the registry derives (operations/index.ts REGISTRY_CHECKS) gains their values, and
 * the constraints on amounts learn that an adjustment is signed and a reversal points at its
 * recharge. Payments, refunds and recharges keep exactly the rules they had.
 */
const OPERATION_TYPES = ['payment', 'refund', 'recharge', 'adjustment', 'recharge_reversal'];
const TRANSACTION_TYPES = ['payment', 'refund', 'recharge', 'adjustment', 'recharge_reversal'];
const BALANCE_REASONS = ['payment', 'refund', 'recharge', 'adjustment', 'recharge_reversal'];

/** Replaces a CHECK: added NOT VALID, then validated (a scan that does not block writes), like setCheckValues. */
async function replaceCheck(knex: Knex, table: string, drop: string, add: string, expression: string): Promise<void> {
  await knex.raw(`ALTER TABLE ?? DROP CONSTRAINT IF EXISTS ??, ADD CONSTRAINT ?? CHECK (${expression}) NOT VALID`, [table, drop, add]);
  await knex.raw('ALTER TABLE ?? VALIDATE CONSTRAINT ??', [table, add]);
}

export async function up(knex: Knex): Promise<void> {
  await setCheckValues(knex, 'operations', 'operations_type', 'type', OPERATION_TYPES);
  await setCheckValues(knex, 'transactions', 'transactions_type', 'type', TRANSACTION_TYPES);
  await setCheckValues(knex, 'balance_ledger', 'balance_ledger_reason', 'reason', BALANCE_REASONS);
  // An adjustment's amount is signed (never 0); every other operation's is more than 0.
  await replaceCheck(knex, 'operations', 'operations_amount_positive', 'operations_amount_sign', `amount_minor > 0 OR (type = 'adjustment' AND amount_minor <> 0)`);
  // An adjustment's transaction carries the signed amount as raw and final; the others as before.
  await replaceCheck(
    knex,
    'transactions',
    'transactions_amounts',
    'transactions_amounts',
    `CASE WHEN type = 'adjustment' THEN raw_amount_minor <> 0 AND final_amount_minor = raw_amount_minor ELSE raw_amount_minor > 0 AND final_amount_minor >= 0 END`,
  );
  // Nothing is ever refunded of a negative adjustment; for every other row the rule is unchanged.
  await replaceCheck(knex, 'transactions', 'transactions_refunded_le_final', 'transactions_refunded_le_final', 'refunded_amount_minor >= 0 AND (refunded_amount_minor = 0 OR refunded_amount_minor <= final_amount_minor)');
  // A recharge reversal points at its recharge, as a refund at its payment.
  await replaceCheck(knex, 'transactions', 'transactions_refund_has_original', 'transactions_refund_has_original', `(type IN ('refund', 'recharge_reversal')) = (original_tx_id IS NOT NULL)`);
  // Payments and refunds are a merchant's; recharges may be (at the till); operator tools are no merchant's.
  await replaceCheck(knex, 'transactions', 'transactions_merchant_for_money_out', 'transactions_merchant_for_money_out', `type NOT IN ('payment', 'refund') OR merchant_id IS NOT NULL`);
}

export async function down(knex: Knex): Promise<void> {
  // Only while no adjustment or reversal exists: the old constraints refuse their rows.
  await replaceCheck(knex, 'transactions', 'transactions_merchant_for_money_out', 'transactions_merchant_for_money_out', `type = 'recharge' OR merchant_id IS NOT NULL`);
  await replaceCheck(knex, 'transactions', 'transactions_refund_has_original', 'transactions_refund_has_original', `(type = 'refund') = (original_tx_id IS NOT NULL)`);
  await replaceCheck(knex, 'transactions', 'transactions_refunded_le_final', 'transactions_refunded_le_final', 'refunded_amount_minor >= 0 AND refunded_amount_minor <= final_amount_minor');
  await replaceCheck(knex, 'transactions', 'transactions_amounts', 'transactions_amounts', 'raw_amount_minor > 0 AND final_amount_minor >= 0');
  await replaceCheck(knex, 'operations', 'operations_amount_sign', 'operations_amount_positive', 'amount_minor > 0');
  await setCheckValues(knex, 'balance_ledger', 'balance_ledger_reason', 'reason', ['payment', 'refund', 'recharge']);
  await setCheckValues(knex, 'transactions', 'transactions_type', 'type', ['payment', 'refund', 'recharge']);
  await setCheckValues(knex, 'operations', 'operations_type', 'type', ['payment', 'refund', 'recharge']);
}
