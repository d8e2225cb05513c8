import type { Db } from '../db/knex.js';
import { lockCard, setCardStatus } from '../db/queries/member-cards.js';
import { lockMember, setMemberStatus } from '../db/queries/members.js';
import { lockMerchant, setMerchantStatus } from '../db/queries/merchants.js';
import { endQrTokens } from '../db/queries/qr.js';
import { AppError, notFound } from '../domain/errors.js';
import type { Caller } from '../domain/principal.js';
import { auditBy } from './audit.js';
import { refuseIfClosed } from './card-access.js';

/** What an admin can switch on and off, and how each is locked and changed. */
interface Subject<Row> {
  lock(trx: Db, id: string): Promise<{ status: string } | undefined>;
  set(trx: Db, id: string, from: string, to: string): Promise<Row>;
  /** Refuses a row no action may change, before the status check's 409 (a closed card: CARD_NOT_ACTIVE). */
  refuse?(row: { status: string }): void;
  /** What else entering `to` ends, for the audit event. */
  also?(trx: Db, id: string, to: string): Promise<Record<string, unknown>>;
  /** Each action: the status it leaves and the one it enters. */
  actions: Record<string, readonly [from: string, to: string]>;
}

const SUBJECTS = {
  card: {
    // The card lock orders this after any payment of the card already running.
    lock: lockCard,
    refuse: refuseIfClosed,
    set: async (trx, id, from, to) => (await setCardStatus(trx, id, from, to))!,
    // A frozen card's QR codes end with it: one shown before the freeze must not pay after the unfreeze.
    async also(trx, id, to) {
      const revoked = to === 'frozen' ? await endQrTokens(trx, { card_id: id }, 'revoked') : 0;
      return revoked ? { qr_revoked: revoked } : {};
    },
    actions: { freeze: ['active', 'frozen'], unfreeze: ['frozen', 'active'] },
  } satisfies Subject<Awaited<ReturnType<typeof setCardStatus>>>,
  // Suspension is checked where money moves (charges, recharges) and refuses the member's tokens; bindings stay.
  member: {
    lock: lockMember,
    set: (trx, id, _from, to) => setMemberStatus(trx, id, to as 'active' | 'suspended'),
    actions: { suspend: ['active', 'suspended'], reactivate: ['suspended', 'active'] },
  } satisfies Subject<Awaited<ReturnType<typeof setMemberStatus>>>,
  // A suspended merchant's keys still authenticate: reads keep working, writes are refused.
  merchant: {
    lock: lockMerchant,
    set: (trx, id, _from, to) => setMerchantStatus(trx, id, to as 'active' | 'suspended'),
    actions: { suspend: ['active', 'suspended'], reactivate: ['suspended', 'active'] },
  } satisfies Subject<Awaited<ReturnType<typeof setMerchantStatus>>>,
};

type Subjects = typeof SUBJECTS;
export type StatusSubject = keyof Subjects;
export type StatusAction<S extends StatusSubject> = keyof Subjects[S]['actions'] & string;
type RowOf<S extends StatusSubject> = Awaited<ReturnType<Subjects[S]['set']>>;

/** The actions of a subject, for the routes that offer them. */
export const statusActions = <S extends StatusSubject>(subject: S) => Object.keys(SUBJECTS[subject].actions) as StatusAction<S>[];

/**
 * The one status transition of cards, members and merchants: lock the row, check it is in the
 * status the action leaves (409 CONFLICT otherwise: suspend twice, unfreeze an active card), set
 * the new one, and record who did it and why, in one transaction.
 */
export async function changeStatus<S extends StatusSubject>(db: Db, caller: Caller, subject: S, action: StatusAction<S>, id: string, reason?: string): Promise<RowOf<S>> {
  const s: Subject<RowOf<S>> = SUBJECTS[subject] as never;
  const [from, to] = s.actions[action]!;
  return db.transaction(async (trx): Promise<RowOf<S>> => {
    const current = await s.lock(trx, id);
    if (!current) throw notFound(subject);
    s.refuse?.(current);
    if (current.status !== from) throw new AppError('CONFLICT', `The ${subject} is ${current.status}; only a ${from} ${subject} can be changed by ${action}`, { status: current.status });
    const row = await s.set(trx, id, from, to);
    const also = s.also ? await s.also(trx, id, to) : {};
    await auditBy(trx, caller, { action: `${subject}.${action}`, objectType: subject, objectId: id, context: { ...(reason ? { reason } : {}), ...also } });
    return row;
  });
}
