import type { Knex } from 'knex';
import type { z } from 'zod';
import type { Deps } from '../app/deps.js';
import type { Read, Statement } from '../db/knex.js';
import type { BindingRole } from '../db/queries/bindings.js';
import type { MemberCardRow } from '../db/queries/member-cards.js';
import type { NewOperation, OperationRecord } from '../db/queries/operations.js';
import { AppError, type ErrorCode } from '../domain/errors.js';
import type { KeyRole } from '../domain/tokens.js';
import type { Principal } from '../domain/principal.js';

/** The parts of an operation its kind decides from the request; acceptance adds who asked, the key and the partition. */
export type Draft = Omit<NewOperation, 'id' | 'status' | 'principal' | 'idempotency_key' | 'request_hash' | 'api_key_id' | 'actor_role' | 'partition' | 'request_id' | 'ip'>;

/** What a draft may look up: the database, the settings, and the cards the caller may use. */
export interface DraftContext {
  db: Deps['db'];
  config: Deps['config'];
  principal: Principal;
  /** The card `cardId` if the caller may use it for `need` (404/403 otherwise). */
  cardFor(cardId: string, need: 'read' | 'pay' | 'manage'): Promise<{ card: MemberCardRow; bindingRole: BindingRole | null }>;
}

/** An operation's request as the route received it: path parameters and the parsed body. */
export interface OperationRequest<Body> {
  params: Record<string, string>;
  body: Body;
}

/** What a successful operation writes (sent in one round trip), answers, and tells the outbox and the audit trail. */
export interface Applied {
  writes: Statement[];
  result: Record<string, unknown>;
  event: { merchantId: string | null; type: string; data: Record<string, unknown> };
  audit: { action: string; objectType: string; objectId: string; context: Record<string, unknown> };
  /** Run once the batch has committed (metrics): never for a transaction that rolls back. */
  afterCommit?: () => void;
}

/** A business refusal that has something to run once the batch commits (metrics); other refusals are plain AppErrors. */
export class Refused extends AppError {
  constructor(code: AppError['code'], message: string, details?: Record<string, unknown>, readonly afterCommit?: () => void) {
    super(code, message, details);
  }
}

/**
 * Applies the business rules of one operation to the rows it locks (reading them with `read`,
 * whose round trip may carry earlier operations' writes), and returns the writes that follow,
 * unsent (built with `trx`, sent by the runner). Throws a non-retryable AppError for a business
 * refusal (the operation then fails with that code); any other error is infrastructure trouble
 * and the job is retried.
 */
export type ApplyOperation = (trx: Knex.Transaction, op: OperationRecord, deps: Deps, read: Read) => Promise<Applied>;

/**
 * One way a request becomes an operation: an HTTP route (path, roles, body, rate limit), where the
 * card comes from, and the draft. Most kinds have one; a kind may have more (a recharge is asked
 * for by card id, or at the till with the member's QR), all applied by its one `apply`.
 */
export interface OperationRoute<Schema extends z.ZodType = z.ZodType> {
  http: {
    /** Under /v1, with express path parameters. */
    path: string;
    roles: readonly KeyRole[];
    body: Schema;
    /** Requests per minute per key (a config value), counted before acceptance. */
    ratePerKeyPerMin?: (config: Deps['config']) => number;
  };
  /**
   * Where the card comes from: the presented QR (found by the insert itself, so acceptance does
   * no read), or the draft. A card from the request (a path id) is part of what the idempotency
   * key stands for; one found from the QR or the original transaction is not.
   */
  card: 'qr' | 'draft' | 'request';
  draft(ctx: DraftContext, request: OperationRequest<z.output<Schema>>): Promise<Draft>;
}

/**
 * One kind of card operation (CONVENTIONS.md "Layout", README "Adding an operation kind"): how a
 * request becomes a draft, which card it runs on, how it is applied, and what it can end with.
 * The registry (operations/index.ts) derives every list of types from these.
 */
export interface OperationKind<Schema extends z.ZodType = z.ZodType> extends OperationRoute<Schema> {
  /** The `type` of the operation, and its job name on the partition queue. */
  type: string;
  /** Further routes that make operations of this kind, each with its own body and draft. */
  moreRoutes?: readonly OperationRoute[];
  /**
   * Whether an accepted operation waits for a second admin key before it is enqueued (four eyes):
   * it is stored as `requires_approval` (services/approvals.ts approves or rejects it).
   */
  needsApproval?: (draft: Draft, config: Deps['config']) => boolean;
  apply: ApplyOperation;
  /** Every terminal code `apply` can refuse with (API.md lists them; tests hold `apply` to them). */
  refusals: readonly ErrorCode[];
  /** The outbox events it emits: on success, and on refusal when the merchant should hear of it. */
  events: { succeeded: string; failed?: string };
  /** The transaction types and ledger reasons its writes use (the migrations' CHECK lists). */
  transactionTypes: readonly string[];
  balanceReasons: readonly string[];
  pointReasons: readonly string[];
}

/** Every route of a kind: its own, then its further ones. */
export const routesOf = (kind: OperationKind): readonly OperationRoute[] => [kind, ...(kind.moreRoutes ?? [])];

/** Declares a kind with its body schema's type flowing into `draft`. */
export const defineKind = <Schema extends z.ZodType>(kind: OperationKind<Schema>): OperationKind<Schema> => kind;

/** Declares a further route of a kind, with its body schema's type flowing into `draft`. */
export const defineRoute = <Schema extends z.ZodType>(route: OperationRoute<Schema>): OperationRoute<Schema> => route;
