import type { Knex } from 'knex';
import type { z } from 'zod';
import type { Deps } from '../app/deps.js';
import type { Read, Statement } from '../db/knex.js';
import type { BindingRole } from '../db/queries/bindings.js';
import type { MemberCardRow } from '../db/queries/member-cards.js';
import type { Ending, NewOperation, OperationParams, OperationRecord } from '../db/queries/operations.js';
import { AppError, type ErrorCode } from '../domain/errors.js';
import type { KeyRole } from '../domain/tokens.js';
import type { Principal } from '../domain/principal.js';

/** The parts of an operation its kind decides from the request; acceptance adds who asked, the key and the partition. */
export type Draft = Omit<NewOperation, 'id' | 'status' | 'principal' | 'idempotency_key' | 'request_hash' | 'api_key_id' | 'actor_role' | 'partition' | 'request_id' | 'ip'>;

/**
 * A draft of `type` on one card with nothing else set (no merchant, member, QR, amount, method or
 * original transaction): a kind spreads it and sets what it has. The nulls stay explicit fields,
 * so the idempotency request hash (canonical JSON of the draft) is the same as written out by hand.
 */
export const cardDraft = (type: Draft['type'], cardId: string) => ({
  type,
  merchant_id: null,
  member_id: null,
  card_id: cardId,
  qr_token_hash: null,
  amount_minor: null,
  payment_method: null,
  original_tx_no: null,
});

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

/** An outbox event (the runner adds the operation's id to its data). */
export interface OutboxEvent {
  merchantId: string | null;
  type: string;
  data: Record<string, unknown>;
}

/** An audit event of an operation (the runner adds who asked for it). */
export interface AuditEvent {
  action: string;
  objectType: string;
  objectId: string;
  context: Record<string, unknown>;
}

/**
 * An operation another one hands on to, on its own card's partition: a transfer's credit on the
 * destination card. Its row is inserted with the writes of the operation that hands on (so it
 * exists exactly when they committed, like an outbox row), enqueued after the commit, and driven
 * by the reconciler if that enqueue is lost. It carries who asked (principal, key, request) from
 * the operation before it and names the first one of the chain as its parent.
 */
export interface FollowUp {
  /** Chosen by the kind from the parent's id (e.g. `<parent>-credit`): a leg can then exist only once. */
  id: string;
  /** An internal kind (no http) of the registry. */
  type: string;
  card_id: string;
  amount_minor: number | null;
  params: OperationParams;
}

/**
 * An operation of this partition that continued (handed on to follow-ups) and that this one ends
 * with its one terminal outcome: locked by this operation's `read` (a row of this partition, never
 * another's), its outcome written with this operation's writes and announced with its batch. The
 * audit event of an operation that ends another is that ending.
 */
export interface EndsOperation {
  op: OperationRecord;
  outcome: Ending;
  event?: OutboxEvent;
}

interface AppliedBase {
  /** Sent in one round trip: no two may change the same row (db/knex.ts runTogether). */
  writes: Statement[];
  audit: AuditEvent;
  /** Inserted with the writes, enqueued on their partitions after commit. */
  followUps?: FollowUp[];
  ends?: EndsOperation;
  /** Run once the batch has committed (metrics): never for a transaction that rolls back. */
  afterCommit?: () => void;
}

/** What a successful operation writes (sent in one round trip), answers, and tells the outbox and the audit trail. */
export interface Succeeded extends AppliedBase {
  continues?: undefined;
  result: Record<string, unknown>;
  /** Internal kinds (follow-ups) tell the outbox nothing: the operation they end does. */
  event?: OutboxEvent;
}

/**
 * An operation whose writes are done here but whose end is not: it hands on to `followUps`
 * (at least one) and stays `processing` (continued) until one of them ends it (`ends`). No job
 * of its own applies it again; the reconciler leaves it to its follow-ups.
 */
export interface Continues extends AppliedBase {
  continues: true;
  followUps: [FollowUp, ...FollowUp[]];
}

export type Applied = Succeeded | Continues;

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

/** What every kind declares, routed or internal. */
interface KindBase {
  /** The `type` of the operation, and its job name on the partition queue. */
  type: string;
  apply: ApplyOperation;
  /** Every terminal code `apply` can refuse with (API.md lists them; tests hold `apply` to them). */
  refusals: readonly ErrorCode[];
  /** The outbox events it emits: on success, and on refusal when the merchant should hear of it. Internal kinds emit none. */
  events?: { succeeded: string; failed?: string };
  /** The transaction types and ledger reasons its writes use (the migrations' CHECK lists). */
  transactionTypes: readonly string[];
  balanceReasons: readonly string[];
  pointReasons: readonly string[];
  /**
   * What a refused operation still hands on, given its code (a refusal of `apply`, or
   * INTERNAL_ERROR once its job is out of attempts): a credit that cannot land sends the money back.
   */
  followUpsOnRefusal?(op: OperationRecord, code: ErrorCode, message: string): FollowUp[];
  /**
   * 'never' for a step that must happen once what came before it committed (the end of a
   * transfer, which may hand money back): out of attempts, it stays open with an alert, and the
   * reconciler drives it again, instead of ending INTERNAL_ERROR. Default 'fail'.
   */
  giveUp?: 'fail' | 'never';
}

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
export interface RoutedKind<Schema extends z.ZodType = z.ZodType> extends KindBase, OperationRoute<Schema> {
  /** Further routes that make operations of this kind, each with its own body and draft. */
  moreRoutes?: readonly OperationRoute[];
  /**
   * Whether an accepted operation waits for a second admin key before it is enqueued (four eyes):
   * it is stored as `requires_approval` (services/approvals.ts approves or rejects it).
   */
  needsApproval?: (draft: Draft, config: Deps['config']) => boolean;
}

/** A kind no client asks for: a follow-up another operation hands on to (a transfer's legs). */
export interface InternalKind extends KindBase {
  http?: undefined;
  moreRoutes?: undefined;
  needsApproval?: undefined;
}

export type OperationKind<Schema extends z.ZodType = z.ZodType> = RoutedKind<Schema> | InternalKind;

export const isRouted = (kind: OperationKind): kind is RoutedKind => kind.http !== undefined;

/** Every route of a kind: its own, then its further ones (none for an internal kind). */
export const routesOf = (kind: OperationKind): readonly OperationRoute[] => (isRouted(kind) ? [kind, ...(kind.moreRoutes ?? [])] : []);

/** Declares a kind with its body schema's type flowing into `draft`. */
export const defineKind = <Schema extends z.ZodType>(kind: RoutedKind<Schema>): RoutedKind<Schema> => kind;

/** Declares a further route of a kind, with its body schema's type flowing into `draft`. */
export const defineRoute = <Schema extends z.ZodType>(route: OperationRoute<Schema>): OperationRoute<Schema> => route;

/** Declares an internal kind (a follow-up). */
export const defineInternalKind = (kind: InternalKind): InternalKind => kind;

/** The requested amount of a kind whose every draft sets one. */
export function amountOf(op: OperationRecord): number {
  if (op.amount_minor === null) throw new Error(`operation ${op.id} (${op.type}) has no amount`);
  return op.amount_minor;
}
