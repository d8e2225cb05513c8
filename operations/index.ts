import { routesOf, type OperationKind } from './kind.js';
import { adjustment } from './adjustment.js';
import { payment } from './payment.js';
import { refund } from './refund.js';
import { recharge } from './recharge.js';
import { rechargeReversal } from './recharge-reversal.js';
import { cardClose } from './card-close.js';
import { cardReplacement } from './card-replacement.js';
import { transfer, transferCredit, transferEnd } from './transfer.js';

/**
 * The registry of operation kinds: every list of operation types, job names, event types and
 * CHECK values derives from this one array (README "Adding an operation kind").
 */
export const OPERATION_KINDS: readonly OperationKind[] = [payment, refund, recharge, adjustment, rechargeReversal, cardReplacement, cardClose, transfer, transferCredit, transferEnd];

/**
 * What is written outside any operation: a voucher is created with its value (a `recharge`
 * transaction, cards route), points are adjusted by an admin, settlements and risk alerts are events.
 */
const OUTSIDE_OPERATIONS = {
  transactionTypes: ['recharge'],
  balanceReasons: ['recharge'],
  pointReasons: ['adjustment'],
  webhookEvents: ['settlement.generated'],
  internalEvents: ['risk.alert'],
} as const;

const unique = (values: readonly string[]) => [...new Set(values)];

export const OPERATION_TYPES = OPERATION_KINDS.map((k) => k.type);
export const TRANSACTION_TYPES = unique([...OPERATION_KINDS.flatMap((k) => k.transactionTypes), ...OUTSIDE_OPERATIONS.transactionTypes]);
export const BALANCE_REASONS = unique([...OPERATION_KINDS.flatMap((k) => k.balanceReasons), ...OUTSIDE_OPERATIONS.balanceReasons]);
export const POINT_REASONS = unique([...OPERATION_KINDS.flatMap((k) => k.pointReasons), ...OUTSIDE_OPERATIONS.pointReasons]);
/** The events a merchant may subscribe a webhook endpoint to. */
export const WEBHOOK_EVENTS = unique([...OPERATION_KINDS.flatMap((k) => (k.events ? [k.events.succeeded, ...(k.events.failed ? [k.events.failed] : [])] : [])), ...OUTSIDE_OPERATIONS.webhookEvents]);
export const EVENT_TYPES = [...WEBHOOK_EVENTS, ...OUTSIDE_OPERATIONS.internalEvents];

/** The kind of `type`; an operation row of an unknown type is a deployment error, not a business refusal. */
export function kindOf(type: string): OperationKind {
  const kind = OPERATION_KINDS.find((k) => k.type === type);
  if (!kind) throw new Error(`No operation kind "${type}" in operations/index.ts`);
  return kind;
}

/**
 * The database CHECK constraints that must list exactly the registry's values: a kind added
 * without its migration fails boot (and tests) naming the constraint to change.
 */
export const REGISTRY_CHECKS: readonly { constraint: string; values: readonly string[] }[] = [
  { constraint: 'operations_type', values: OPERATION_TYPES },
  { constraint: 'transactions_type', values: TRANSACTION_TYPES },
  { constraint: 'balance_ledger_reason', values: BALANCE_REASONS },
  { constraint: 'point_ledger_reason', values: POINT_REASONS },
];

/** Boot fails, saying what to fix, when two kinds share a type or path. */
export function assertKindsDistinct(): void {
  const problems: string[] = [];
  const seen = new Map<string, string>();
  for (const kind of OPERATION_KINDS) {
    for (const key of [`type ${kind.type}`, ...routesOf(kind).map((route) => `path ${route.http.path}`)]) {
      if (seen.has(key)) problems.push(`${key} is declared twice (${seen.get(key)} and ${kind.type})`);
      seen.set(key, kind.type);
    }
  }
  if (problems.length) throw new Error(`Operation registry invalid:\n  - ${problems.join('\n  - ')}`);
}
