import type { Knex } from 'knex';
import type { Db } from '../knex.js';

/**
 * One retention batch per call: up to `limit` rows past their retention, oldest first, chosen by
 * primary key in a subquery (`… WHERE id IN (SELECT id … LIMIT n FOR UPDATE SKIP LOCKED)`), so one
 * statement touches a bounded number of rows and never waits on a row another transaction holds.
 * Each returns the number of rows changed; run outside a transaction, each batch is its own commit.
 */

const before = (db: Db, unit: 'hours' | 'days', amount: number) => db.raw(`now() - make_interval(${unit} => ?)`, [amount]);

const oldest = (db: Db, table: string, column: string, limit: number, where: (q: Knex.QueryBuilder) => void) =>
  db(table).select('id').where(where).orderBy(column).limit(limit).forUpdate().skipLocked();

/**
 * Failed operations (refusals, no transaction) older than `days`. Rejected ones (an approver's
 * decision, rare) stay with their audit events.
 */
export const purgeFailedOperations = (db: Db, days: number, limit: number): Promise<number> =>
  db('operations')
    .whereIn(
      'id',
      oldest(db, 'operations', 'created_at', limit, (q) =>
        q
          .where('status', 'failed')
          .andWhere('created_at', '<', before(db, 'days', days))
          // A failed operation has no transaction; should one ever, it is part of the record and stays.
          .whereNotExists(db('transactions').select(db.raw('1')).whereRaw('transactions.operation_id = operations.id')),
      ),
    )
    .del();

/** Releases the idempotency keys of finished operations older than `hours`; the operations stay. */
export const releaseIdempotencyKeys = (db: Db, hours: number, limit: number): Promise<number> =>
  db('operations')
    .whereIn(
      'id',
      oldest(db, 'operations', 'created_at', limit, (q) =>
        q
          .whereNotNull('idempotency_key')
          .whereIn('status', ['succeeded', 'failed', 'rejected'])
          .andWhere('created_at', '<', before(db, 'hours', hours)),
      ),
    )
    .update({ idempotency_key: null });

/** Outbox events relayed more than `days` ago. */
export const purgeRelayedEvents = (db: Db, days: number, limit: number): Promise<number> =>
  db('events')
    .whereIn(
      'id',
      oldest(db, 'events', 'relayed_at', limit, (q) => q.whereNotNull('relayed_at').andWhere('relayed_at', '<', before(db, 'days', days))),
    )
    .del();

/** Finished (delivered or given-up) webhook deliveries, with their attempt logs, older than `days`. */
export const purgeFinishedDeliveries = (db: Db, days: number, limit: number): Promise<number> =>
  db('webhook_deliveries')
    .whereIn(
      'id',
      oldest(db, 'webhook_deliveries', 'created_at', limit, (q) => q.whereIn('status', ['delivered', 'failed']).andWhere('created_at', '<', before(db, 'days', days))),
    )
    .del();

/** Ended QR tokens (used, rotated, revoked, expired) issued more than `days` ago. */
export const purgeQrHistory = (db: Db, days: number, limit: number): Promise<number> =>
  db('card_qr_history')
    .whereIn(
      'id',
      oldest(db, 'card_qr_history', 'issued_at', limit, (q) => q.whereNotNull('end_reason').andWhere('issued_at', '<', before(db, 'days', days))),
    )
    .del();

/** Risk alerts resolved more than `days` ago. */
export const purgeResolvedAlerts = (db: Db, days: number, limit: number): Promise<number> =>
  db('risk_alerts')
    .whereIn(
      'id',
      oldest(db, 'risk_alerts', 'created_at', limit, (q) => q.where('status', 'resolved').andWhere('resolved_at', '<', before(db, 'days', days))),
    )
    .del();
