import { expect } from 'chai';
import fc from 'fast-check';
import { CARD_CLOSE_REFUSALS, decideCardClose } from '../../domain/decide-card-close.js';
import { CARD_REPLACEMENT_REFUSALS, decideCardReplacement } from '../../domain/decide-card-replacement.js';
import { decideCharge } from '../../domain/decide-charge.js';
import { decideRefund } from '../../domain/decide-refund.js';
import {
  decideTransferCredit,
  decideTransferDebit,
  decideTransferEnd,
  TRANSFER_CREDIT_REFUSALS,
  TRANSFER_DEBIT_REFUSALS,
  type CreditOutcome,
  type TransferCardState,
} from '../../domain/decide-transfer.js';
import { isRefusal, type Refusal } from '../../domain/decision.js';
import type { CardType } from '../../domain/discount.js';
import { chargeState, LEVELS, PRESENTED } from './decisions-fixtures.js';

const options = { seed: Number(process.env.FC_SEED ?? 20_261_201), numRuns: Number(process.env.FC_RUNS ?? 500) };
const MAX_BALANCE = 1_000_000;

const prepaid = (balance: number, rest: Partial<NonNullable<TransferCardState['card']>> = {}): TransferCardState => ({
  card: { type: 'prepaid', status: 'active', is_expired: false, balance_minor: balance, ...rest },
  ownerStatus: 'active',
});
const code = (d: object) => (isRefusal(d as Refusal) ? (d as Refusal).refused : null);

const cardState = fc.record({
  card: fc.option(
    fc.record({
      type: fc.constantFrom<CardType>('standard', 'prepaid', 'corporate', 'voucher'),
      status: fc.constantFrom('active', 'frozen', 'closed', 'used', 'expired'),
      is_expired: fc.boolean(),
      balance_minor: fc.nat({ max: MAX_BALANCE }),
    }),
    { nil: undefined },
  ),
  ownerStatus: fc.constantFrom('active', 'suspended', null),
});

describe('domain: transfer legs', () => {
  it('the debit takes the amount off an active, unexpired stored-value card that holds it', () => {
    expect(decideTransferDebit(prepaid(5000), { amountMinor: 5000 })).to.deep.equal({ balanceDeltaMinor: -5000, balanceAfterMinor: 0 });
    expect(code(decideTransferDebit(prepaid(4999), { amountMinor: 5000 }))).to.equal('INSUFFICIENT_BALANCE');
    expect(code(decideTransferDebit(prepaid(5000, { status: 'frozen' }), { amountMinor: 1 }))).to.equal('CARD_NOT_ACTIVE');
    expect(code(decideTransferDebit(prepaid(5000, { status: 'closed' }), { amountMinor: 1 }))).to.equal('CARD_NOT_ACTIVE');
    expect(code(decideTransferDebit(prepaid(5000, { is_expired: true }), { amountMinor: 1 }))).to.equal('CARD_EXPIRED');
    expect(code(decideTransferDebit({ ...prepaid(5000), ownerStatus: 'suspended' }, { amountMinor: 1 }))).to.equal('MEMBER_SUSPENDED');
    expect(code(decideTransferDebit(prepaid(5000, { type: 'voucher' }), { amountMinor: 1 }))).to.equal('RECHARGE_NOT_ALLOWED');
    expect(code(decideTransferDebit({ card: undefined, ownerStatus: null }, { amountMinor: 1 }))).to.equal('RECHARGE_NOT_ALLOWED');
  });

  it('the credit lands on an open card within MAX_BALANCE, as a recharge would', () => {
    expect(decideTransferCredit(prepaid(MAX_BALANCE - 100), { amountMinor: 100 }, { maxBalanceMinor: MAX_BALANCE })).to.deep.equal({ balanceDeltaMinor: 100, balanceAfterMinor: MAX_BALANCE });
    expect(code(decideTransferCredit(prepaid(MAX_BALANCE - 99), { amountMinor: 100 }, { maxBalanceMinor: MAX_BALANCE }))).to.equal('BALANCE_LIMIT_EXCEEDED');
    expect(code(decideTransferCredit(prepaid(0, { status: 'frozen' }), { amountMinor: 1 }, { maxBalanceMinor: MAX_BALANCE }))).to.equal('CARD_NOT_ACTIVE');
    expect(code(decideTransferCredit(prepaid(0, { status: 'closed' }), { amountMinor: 1 }, { maxBalanceMinor: MAX_BALANCE }))).to.equal('CARD_NOT_ACTIVE');
    expect(code(decideTransferCredit(prepaid(0, { type: 'corporate' }), { amountMinor: 1 }, { maxBalanceMinor: MAX_BALANCE }))).to.equal(null);
    expect(code(decideTransferCredit(prepaid(0, { type: 'standard' }), { amountMinor: 1 }, { maxBalanceMinor: MAX_BALANCE }))).to.equal('RECHARGE_NOT_ALLOWED');
  });

  it('the end returns everything when the credit was refused, and nothing when it landed', () => {
    expect(decideTransferEnd({ credited: true }, 700)).to.deep.equal({ returnMinor: 0, outcome: { status: 'succeeded' } });
    expect(decideTransferEnd({ credited: false, code: 'CARD_NOT_ACTIVE', message: 'frozen' }, 700)).to.deep.equal({ returnMinor: 700, outcome: { status: 'failed', code: 'CARD_NOT_ACTIVE', message: 'frozen' } });
  });

  it(`a transfer conserves money: Σ of both cards is unchanged whatever the cards are when each leg runs (seed ${options.seed})`, () => {
    fc.assert(
      fc.property(cardState, cardState, fc.integer({ min: 1, max: MAX_BALANCE }), fc.integer({ min: -MAX_BALANCE, max: MAX_BALANCE }), (atDebit, atCredit, amount, sourceMoved) => {
        // The source as the debit finds it, the destination as the credit finds it (it may have changed since the transfer was asked).
        let source = atDebit.card?.balance_minor ?? 0;
        let destination = atCredit.card?.balance_minor ?? 0;
        const before = source + destination;
        const debit = decideTransferDebit(atDebit, { amountMinor: amount });
        if (isRefusal(debit)) {
          expect(TRANSFER_DEBIT_REFUSALS).to.include(debit.refused);
          return; // nothing moved, no leg follows
        }
        source += debit.balanceDeltaMinor;
        expect(source).to.be.at.least(0);
        expect(debit.balanceDeltaMinor).to.equal(-amount);
        // Between the legs the source's own operations go on (payments, recharges): they are not the transfer's.
        const others = Math.max(-source, sourceMoved);
        source += others;
        const credit = decideTransferCredit(atCredit, { amountMinor: amount }, { maxBalanceMinor: MAX_BALANCE });
        let told: CreditOutcome = { credited: true };
        if (isRefusal(credit)) {
          expect(TRANSFER_CREDIT_REFUSALS).to.include(credit.refused);
          told = { credited: false, code: credit.refused, message: credit.message };
        } else {
          expect(credit.balanceDeltaMinor).to.equal(amount);
          destination += credit.balanceDeltaMinor;
          expect(destination).to.be.at.most(MAX_BALANCE);
        }
        // The end returns the amount whatever the source's state now: it is the source's own money.
        const end = decideTransferEnd(told, amount);
        source += end.returnMinor;
        expect(source + destination - others).to.equal(before);
        expect(end.outcome.status === 'succeeded').to.equal(!isRefusal(credit));
        if (end.outcome.status === 'failed') expect(end.outcome.code).to.equal((credit as Refusal).refused);
      }),
      options,
    );
  });

  it('any interleaving of many transfers both ways between two cards keeps Σ balances + money in flight constant, and no balance below 0', () => {
    const transferArb = fc.record({ aToB: fc.boolean(), amount: fc.integer({ min: 1, max: 50_000 }), destinationRefuses: fc.boolean() });
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 100_000 }), fc.integer({ min: 0, max: 100_000 }), fc.array(transferArb, { maxLength: 20 }), fc.array(fc.nat(), { maxLength: 80 }), (a0, b0, transfers, schedule) => {
        const balance = { a: a0, b: b0 };
        const total = a0 + b0;
        // Each transfer's legs run in order (debit, credit, end); transfers interleave as the schedule picks them.
        const next = transfers.map(() => 0);
        const inFlight = transfers.map(() => 0);
        const credited = transfers.map(() => false);
        const step = (i: number) => {
          const t = transfers[i]!;
          const [from, to] = t.aToB ? (['a', 'b'] as const) : (['b', 'a'] as const);
          if (next[i] === 0) {
            const d = decideTransferDebit(prepaid(balance[from]), { amountMinor: t.amount });
            if (isRefusal(d)) {
              next[i] = 3;
              return;
            }
            balance[from] += d.balanceDeltaMinor;
            inFlight[i] = t.amount;
          } else if (next[i] === 1) {
            const c = decideTransferCredit(prepaid(balance[to], t.destinationRefuses ? { status: 'frozen' } : {}), { amountMinor: t.amount }, { maxBalanceMinor: MAX_BALANCE });
            if (!isRefusal(c)) {
              balance[to] += c.balanceDeltaMinor;
              credited[i] = true;
            }
          } else if (next[i] === 2) {
            const e = decideTransferEnd(credited[i] ? { credited: true } : { credited: false, code: 'CARD_NOT_ACTIVE', message: '' }, t.amount);
            balance[from] += e.returnMinor;
            inFlight[i] = 0;
          }
          next[i]!++;
        };
        for (const pick of schedule) {
          const open = next.map((n, i) => (n < 3 ? i : -1)).filter((i) => i >= 0);
          if (!open.length) break;
          step(open[pick % open.length]!);
          // In flight: debited and not yet credited or returned.
          const flying = inFlight.reduce((sum, amount, i) => sum + (credited[i] ? 0 : amount), 0);
          expect(balance.a + balance.b + flying).to.equal(total);
          expect(balance.a).to.be.at.least(0);
          expect(balance.b).to.be.at.least(0);
        }
        for (let i = 0; i < transfers.length; i++) while (next[i]! < 3) step(i);
        expect(balance.a + balance.b).to.equal(total);
      }),
      options,
    );
  });
});

describe('domain: card replacement and card close', () => {
  const card = { type: 'prepaid' as CardType, status: 'active', is_expired: false, balance_minor: 12_345, points: 2500, level: 1 };

  it('a replacement moves all of the balance, points and level; a frozen card stays frozen; closed, used or expired cards and money in flight refuse', () => {
    expect(decideCardReplacement({ card, ownerStatus: 'active', moneyInFlight: false })).to.deep.equal({ balanceMinor: 12_345, points: 2500, level: 1, newStatus: 'active' });
    expect(decideCardReplacement({ card: { ...card, status: 'frozen' }, ownerStatus: 'active', moneyInFlight: false })).to.include({ newStatus: 'frozen', balanceMinor: 12_345 });
    expect(code(decideCardReplacement({ card: { ...card, status: 'closed' }, ownerStatus: 'active', moneyInFlight: false }))).to.equal('CARD_NOT_ACTIVE');
    expect(code(decideCardReplacement({ card: { ...card, type: 'voucher', status: 'used' }, ownerStatus: 'active', moneyInFlight: false }))).to.equal('VOUCHER_ALREADY_USED');
    expect(code(decideCardReplacement({ card: { ...card, is_expired: true }, ownerStatus: 'active', moneyInFlight: false }))).to.equal('CARD_EXPIRED');
    expect(code(decideCardReplacement({ card, ownerStatus: 'suspended', moneyInFlight: false }))).to.equal('MEMBER_SUSPENDED');
    expect(code(decideCardReplacement({ card, ownerStatus: 'active', moneyInFlight: true }))).to.equal('TRANSFER_IN_PROGRESS');
  });

  it('a close pays out the whole balance (0 is a close with nothing to pay); a closed card, money in flight or a used reference refuse', () => {
    expect(decideCardClose({ card: { status: 'frozen', balance_minor: 999 }, moneyInFlight: false, referenceUsed: false })).to.deep.equal({ payoutMinor: 999, balanceDeltaMinor: -999 });
    expect(decideCardClose({ card: { status: 'active', balance_minor: 0 }, moneyInFlight: false, referenceUsed: true })).to.deep.equal({ payoutMinor: 0, balanceDeltaMinor: -0 });
    expect(code(decideCardClose({ card: { status: 'closed', balance_minor: 0 }, moneyInFlight: false, referenceUsed: false }))).to.equal('CARD_NOT_ACTIVE');
    expect(code(decideCardClose({ card: { status: 'active', balance_minor: 5 }, moneyInFlight: true, referenceUsed: false }))).to.equal('TRANSFER_IN_PROGRESS');
    expect(code(decideCardClose({ card: { status: 'active', balance_minor: 5 }, moneyInFlight: false, referenceUsed: true }))).to.equal('PAYMENT_REFERENCE_USED');
  });

  it('whatever the card, a replacement or a close refuses only with its declared codes, and otherwise leaves nothing behind on the old card', () => {
    const anyCard = fc.record({
      type: fc.constantFrom<CardType>('standard', 'prepaid', 'corporate', 'voucher'),
      status: fc.constantFrom('active', 'frozen', 'closed', 'used', 'expired'),
      is_expired: fc.boolean(),
      balance_minor: fc.nat({ max: MAX_BALANCE }),
      points: fc.nat({ max: 50_000 }),
      level: fc.constantFrom(0, 1, 2, 3),
    });
    fc.assert(
      fc.property(fc.option(anyCard, { nil: undefined }), fc.constantFrom('active', 'suspended', null), fc.boolean(), fc.boolean(), (c, owner, inFlight, used) => {
        const replaced = decideCardReplacement({ card: c, ownerStatus: owner, moneyInFlight: inFlight });
        if (isRefusal(replaced)) expect(CARD_REPLACEMENT_REFUSALS).to.include(replaced.refused);
        else expect([replaced.balanceMinor, replaced.points, replaced.level]).to.deep.equal([c!.balance_minor, c!.points, c!.level]);
        const closed = decideCardClose({ card: c, moneyInFlight: inFlight, referenceUsed: used });
        if (isRefusal(closed)) expect(CARD_CLOSE_REFUSALS).to.include(closed.refused);
        else expect(c!.balance_minor + closed.balanceDeltaMinor).to.equal(0);
      }),
      options,
    );
  });

  it('a closed card refuses a charge accepted before its close with CARD_NOT_ACTIVE (its QR ended with it), and a refund onto it too', () => {
    const closedCharge = decideCharge(chargeState({ status: 'closed' }, { qr: { cardId: null, expiresAt: null } }), { amountMinor: 100, paymentMethod: null, presentedAt: PRESENTED }, { levels: LEVELS });
    expect(code(closedCharge)).to.equal('CARD_NOT_ACTIVE');
    const payment = { card_id: 'card-1', final_amount_minor: 1000, refunded_amount_minor: 0, points_earned: 10, via_balance: true, window_passed: false };
    const refund = decideRefund({ card: { id: 'card-1', type: 'prepaid', status: 'closed', points: 10, level: 0 }, payment }, { amountMinor: 100 }, { refundWindowDays: 30, levels: LEVELS });
    expect(code(refund)).to.equal('CARD_NOT_ACTIVE');
  });
});
