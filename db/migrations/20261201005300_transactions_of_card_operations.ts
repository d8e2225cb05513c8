import type { Knex } from 'knex';

// A card replacement moves the old card's balance to the new one: a transfer_debit on the old card
// and a transfer_credit on the new, both of the one operation. So a transaction is unique per
// (operation, card), not per operation. (Transfers, payouts and replacements name no merchant:
// 20261201004100 already allows that for every type but payments and refunds.) Points moved by a
// replacement are not part of a transaction (one may have points and no balance), like an admin's
// points adjustment.
export async function up(knex: Knex): Promise<void> {
  await knex.raw('ALTER TABLE transactions DROP CONSTRAINT transactions_operation_id_unique');
  await knex.raw('ALTER TABLE transactions ADD CONSTRAINT transactions_operation_card_unique UNIQUE (operation_id, card_id)');
  await knex.raw(`ALTER TABLE point_ledger DROP CONSTRAINT point_ledger_tx_or_adjustment,
    ADD CONSTRAINT point_ledger_tx_or_adjustment CHECK ((reason IN ('adjustment', 'card_replacement')) = (transaction_id IS NULL))`);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw(`ALTER TABLE point_ledger DROP CONSTRAINT point_ledger_tx_or_adjustment,
    ADD CONSTRAINT point_ledger_tx_or_adjustment CHECK ((reason = 'adjustment') = (transaction_id IS NULL))`);
  await knex.raw('ALTER TABLE transactions DROP CONSTRAINT transactions_operation_card_unique');
  await knex.raw('ALTER TABLE transactions ADD CONSTRAINT transactions_operation_id_unique UNIQUE (operation_id)');
}
