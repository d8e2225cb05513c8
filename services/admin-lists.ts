import type { Deps } from '../app/deps.js';
import type { PageRequest } from '../db/knex.js';
import { listCards, listMerchants, listOperations, type CardListFilter, type ListedCard, type ListedOperation, type MerchantListFilter, type OperationListFilter } from '../db/queries/admin-lists.js';
import { loadLevels } from '../db/queries/levels.js';
import { renameMerchant, setNextFeeRate } from '../db/queries/merchant-fees.js';
import { lockMerchant, type MerchantRow } from '../db/queries/merchants.js';
import { listAllTransactions, type TransactionFilter, type TransactionRecord } from '../db/queries/transactions.js';
import { forbidden, notFound } from '../domain/errors.js';
import type { Level } from '../domain/levels.js';
import type { Caller, Principal } from '../domain/principal.js';
import { OPERATION_TYPES } from '../operations/index.js';
import { auditBy } from './audit.js';

// The admin's cross-tenant views (API.md "Directory, keys and reports"). Lists read the replica
// when there is one (DATABASE_READ_URL): they may trail the primary by the replication lag.

type ListDeps = Pick<Deps, 'dbRead'>;

/** Every merchant's, member's and card's data at once: for admin keys only (the routes say so too). */
function requireAdmin(principal: Principal): void {
  if (principal.role !== 'admin') throw forbidden('This list is for admin keys');
}

export async function findMerchants(deps: ListDeps, principal: Principal, input: MerchantListFilter): Promise<(MerchantRow & { cursor_t: string })[]> {
  requireAdmin(principal);
  return listMerchants(deps.dbRead, input);
}

/** Cards and the level table their discount rates come from. */
export async function findCards(deps: ListDeps, principal: Principal, input: CardListFilter): Promise<{ cards: ListedCard[]; levels: Level[] }> {
  requireAdmin(principal);
  const [cards, levels] = await Promise.all([listCards(deps.dbRead, input), loadLevels(deps.dbRead)]);
  return { cards, levels };
}

export type AdminTransactionFilter = Pick<TransactionFilter, 'merchantId' | 'cardId' | 'memberId' | 'type' | 'status' | 'from' | 'to' | 'txNo'> & PageRequest;

/** Transactions across merchants: the same query, filters and cursor as the merchant's and member's own lists, planned per call. */
export async function findTransactions(deps: ListDeps, principal: Principal, input: AdminTransactionFilter): Promise<TransactionRecord[]> {
  requireAdmin(principal);
  return listAllTransactions(deps.dbRead, input);
}

/** The on-call view: operations by status, type and age (`olderThanS`, by Postgres time), newest first. */
export async function findOperations(deps: ListDeps, principal: Principal, input: Omit<OperationListFilter, 'types'>): Promise<ListedOperation[]> {
  requireAdmin(principal);
  return listOperations(deps.dbRead, { ...input, types: OPERATION_TYPES });
}

export interface MerchantChanges {
  name?: string;
  /** Text with 4 decimals ("0.0060"), as api/schemas/common.ts rateInput(4) gives it. */
  fee_rate?: string;
}

/**
 * Renames a merchant and/or sets its fee rate (PATCH /v1/merchants/:id). A new rate applies from
 * the next settlement day in SETTLEMENT_TZ: settlement of today and of every earlier day keeps the
 * rate in force then (db/queries/merchant-fees.ts). The audit event has the before and after.
 * A value equal to the stored one changes nothing and writes no event.
 */
export async function updateMerchant(deps: Pick<Deps, 'db' | 'config'>, caller: Caller, input: { merchantId: string; changes: MerchantChanges }): Promise<MerchantRow> {
  requireAdmin(caller.principal);
  const { merchantId, changes } = input;
  return deps.db.transaction(async (trx) => {
    let merchant = await lockMerchant(trx, merchantId);
    if (!merchant) throw notFound('merchant');
    const before: Record<string, unknown> = {};
    const after: Record<string, unknown> = {};
    if (changes.name !== undefined && changes.name !== merchant.name) {
      before.name = merchant.name;
      merchant = await renameMerchant(trx, merchantId, changes.name);
      after.name = merchant.name;
    }
    if (changes.fee_rate !== undefined && Number(changes.fee_rate) !== Number(merchant.fee_rate)) {
      before.fee_rate = Number(merchant.fee_rate).toFixed(4);
      before.fee_rate_from = merchant.fee_rate_from ?? null;
      merchant = await setNextFeeRate(trx, merchantId, changes.fee_rate, deps.config.SETTLEMENT_TZ);
      after.fee_rate = changes.fee_rate;
      after.fee_rate_from = merchant.fee_rate_from;
    }
    if (Object.keys(after).length) await auditBy(trx, caller, { action: 'merchant.update', objectType: 'merchant', objectId: merchantId, context: { before, after } });
    return merchant;
  });
}
