import type { Knex } from 'knex';
import * as levels from './20261122000100_create_membership_levels.js';
import * as levelsSeed from './20261122000110_seed_membership_levels.js';
import * as merchants from './20261122000200_create_merchants.js';
import * as members from './20261122000300_create_member_profiles.js';
import * as identities from './20261122000310_create_member_external_identities.js';
import * as cards from './20261122000400_create_member_cards.js';
import * as bindings from './20261122000410_create_card_bindings.js';
import * as qr from './20261122000420_create_card_qr.js';
import * as apiKeys from './20261122000500_create_api_keys.js';
import * as operations from './20261122000600_create_operations.js';
import * as transactions from './20261122000700_create_transactions.js';
import * as ledgers from './20261122000710_create_ledgers.js';
import * as settlements from './20261122000800_create_settlements.js';
import * as webhooks from './20261122000900_create_webhooks.js';
import * as events from './20261122001000_create_events.js';
import * as riskAlerts from './20261122001100_create_risk_alerts.js';
import * as audit from './20261122001200_create_audit_events.js';
import * as txCreatedAt from './20261122001300_index_transactions_created_at.js';
import * as auditChains from './20261122001400_audit_chains.js';
import * as auditChainHeads from './20261122001500_audit_chain_heads.js';
import * as queuedByPartition from './20261122001600_index_queued_by_partition.js';
import * as paymentReference from './20261201000100_transactions_payment_reference.js';
import * as unguessableNumbers from './20261201000200_unguessable_numbers.js';
import * as operationPaymentReference from './20261201000300_operations_payment_reference.js';
import * as apiKeysLastUsed from './20261201000400_api_keys_last_used.js';
import * as dropNumberCounters from './20261201000500_drop_number_counters.js';
import * as failedOpsByAge from './20261201001100_index_failed_operations_by_age.js';
import * as idempotencyByAge from './20261201001200_index_idempotency_keys_by_age.js';
import * as eventsRelayedAt from './20261201001300_index_events_relayed_at.js';
import * as auditCheckpoints from './20261201001400_create_audit_checkpoints.js';
import * as memberContactKeys from './20261201002100_member_contact_keys.js';
import * as uniqueMemberContacts from './20261201002110_unique_member_contacts.js';
import * as memberDirectoryIndexes from './20261201002120_index_member_directory.js';
import * as memberProfileChanges from './20261201002130_create_member_profile_changes.js';
import * as merchantFeeRates from './20261201002200_create_merchant_fee_rates.js';
import * as merchantsFeeRateFrom from './20261201002210_merchants_fee_rate_from.js';
import * as adminCardLists from './20261201002300_index_admin_card_lists.js';
import * as transactionsNewest from './20261201002310_index_transactions_newest.js';
import * as adminTransactionFilters from './20261201002320_index_admin_transaction_filters.js';
import * as operationsByType from './20261201002330_index_operations_by_type.js';
import * as reportRollups from './20261201003000_create_report_rollups.js';
import * as failedPaymentsByCompletion from './20261201003100_index_failed_payments_by_completion.js';
import * as operatorMoneyChecks from './20261201004100_operator_money_checks.js';
import * as approvalStatuses from './20261201004200_operation_approval_statuses.js';
import * as settlementRecharges from './20261201004300_settlement_recharges.js';
import * as cardLimits from './20261201004400_card_limits.js';
import * as cardsReplacedBy from './20261201005100_cards_replaced_by.js';
import * as operationFollowUps from './20261201005200_operations_follow_ups.js';
import * as cardOperationTransactions from './20261201005300_transactions_of_card_operations.js';
import * as cardOperationKinds from './20261201005900_card_operation_kinds.js';
import * as operationsIndexDiet from './20261201006000_operations_index_diet.js';
import * as paymentReferenceOfOpenRecharges from './20261201006100_payment_reference_of_open_recharges.js';

type Migration = { up(knex: Knex): Promise<void>; down(knex: Knex): Promise<void>; config?: { transaction?: boolean } };

/** Migrations in order, by file name. Listed statically so that tsx, tsc output and tests load the same set. */
const MIGRATIONS: Record<string, Migration> = {
  '20261122000100_create_membership_levels': levels,
  '20261122000110_seed_membership_levels': levelsSeed,
  '20261122000200_create_merchants': merchants,
  '20261122000300_create_member_profiles': members,
  '20261122000310_create_member_external_identities': identities,
  '20261122000400_create_member_cards': cards,
  '20261122000410_create_card_bindings': bindings,
  '20261122000420_create_card_qr': qr,
  '20261122000500_create_api_keys': apiKeys,
  '20261122000600_create_operations': operations,
  '20261122000700_create_transactions': transactions,
  '20261122000710_create_ledgers': ledgers,
  '20261122000800_create_settlements': settlements,
  '20261122000900_create_webhooks': webhooks,
  '20261122001000_create_events': events,
  '20261122001100_create_risk_alerts': riskAlerts,
  '20261122001200_create_audit_events': audit,
  '20261122001300_index_transactions_created_at': txCreatedAt,
  '20261122001400_audit_chains': auditChains,
  '20261122001500_audit_chain_heads': auditChainHeads,
  '20261122001600_index_queued_by_partition': queuedByPartition,
  '20261201000100_transactions_payment_reference': paymentReference,
  '20261201000200_unguessable_numbers': unguessableNumbers,
  '20261201000300_operations_payment_reference': operationPaymentReference,
  '20261201000400_api_keys_last_used': apiKeysLastUsed,
  '20261201000500_drop_number_counters': dropNumberCounters,
  '20261201001100_index_failed_operations_by_age': failedOpsByAge,
  '20261201001200_index_idempotency_keys_by_age': idempotencyByAge,
  '20261201001300_index_events_relayed_at': eventsRelayedAt,
  '20261201001400_create_audit_checkpoints': auditCheckpoints,
  '20261201002100_member_contact_keys': memberContactKeys,
  '20261201002110_unique_member_contacts': uniqueMemberContacts,
  '20261201002120_index_member_directory': memberDirectoryIndexes,
  '20261201002130_create_member_profile_changes': memberProfileChanges,
  '20261201002200_create_merchant_fee_rates': merchantFeeRates,
  '20261201002210_merchants_fee_rate_from': merchantsFeeRateFrom,
  '20261201002300_index_admin_card_lists': adminCardLists,
  '20261201002310_index_transactions_newest': transactionsNewest,
  '20261201002320_index_admin_transaction_filters': adminTransactionFilters,
  '20261201002330_index_operations_by_type': operationsByType,
  '20261201003000_create_report_rollups': reportRollups,
  '20261201003100_index_failed_payments_by_completion': failedPaymentsByCompletion,
  '20261201004100_operator_money_checks': operatorMoneyChecks,
  '20261201004200_operation_approval_statuses': approvalStatuses,
  '20261201004300_settlement_recharges': settlementRecharges,
  '20261201004400_card_limits': cardLimits,
  '20261201005100_cards_replaced_by': cardsReplacedBy,
  '20261201005200_operations_follow_ups': operationFollowUps,
  '20261201005300_transactions_of_card_operations': cardOperationTransactions,
  '20261201005900_card_operation_kinds': cardOperationKinds,
  '20261201006000_operations_index_diet': operationsIndexDiet,
  '20261201006100_payment_reference_of_open_recharges': paymentReferenceOfOpenRecharges,
};

export const migrationSource: Knex.MigrationSource<string> = {
  getMigrations: async () => Object.keys(MIGRATIONS).sort(),
  getMigrationName: (name) => name,
  getMigration: async (name) => MIGRATIONS[name]!,
};
