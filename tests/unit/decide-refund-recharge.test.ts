import { expect } from 'chai';
import { decideRecharge, rechargeNotAllowed } from '../../domain/decide-recharge.js';
import { decideRefund, type RefundPlan, type RefundState } from '../../domain/decide-refund.js';
import { isRefusal } from '../../domain/decision.js';
import { LEVELS } from './decisions-fixtures.js';

const rules = { refundWindowDays: 90, levels: LEVELS };
const state = (payment: Partial<NonNullable<RefundState['payment']>> = {}, card: Partial<NonNullable<RefundState['card']>> = {}): RefundState => ({
  card: { id: 'card-1', type: 'prepaid', status: 'active', points: 1010, level: 1, ...card },
  payment: { card_id: 'card-1', final_amount_minor: 10_000, refunded_amount_minor: 0, points_earned: 100, via_balance: true, window_passed: false, ...payment },
});
const plan = (decision: ReturnType<typeof decideRefund>): RefundPlan => {
  if (isRefusal(decision)) throw new Error(`refused: ${decision.refused}`);
  return decision;
};

describe('domain/decide-refund decideRefund', () => {
  it('refuses a refund of no payment, or of another card’s (ORIGINAL_TX_NOT_FOUND)', () => {
    expect(decideRefund({ ...state(), payment: undefined }, { amountMinor: 1 }, rules)).to.include({ refused: 'ORIGINAL_TX_NOT_FOUND' });
    expect(decideRefund({ ...state(), card: undefined }, { amountMinor: 1 }, rules)).to.include({ refused: 'ORIGINAL_TX_NOT_FOUND' });
    expect(decideRefund(state({ card_id: 'card-2' }), { amountMinor: 1 }, rules)).to.include({ refused: 'ORIGINAL_TX_NOT_FOUND' });
  });

  it('refuses outside the window (REFUND_WINDOW_EXPIRED)', () => {
    expect(decideRefund(state({ window_passed: true }), { amountMinor: 1 }, rules)).to.deep.equal({ refused: 'REFUND_WINDOW_EXPIRED', message: 'Payments can be refunded for 90 days' });
  });

  it('refuses more than what is left of the payment (REFUND_EXCEEDS_AVAILABLE), cumulatively', () => {
    expect(decideRefund(state({ refunded_amount_minor: 6000 }), { amountMinor: 4001 }, rules)).to.deep.include({ refused: 'REFUND_EXCEEDS_AVAILABLE', details: { available: '40.00' } });
    expect(plan(decideRefund(state({ refunded_amount_minor: 6000 }), { amountMinor: 4000 }, rules))).to.include({ refundedTotalMinor: 10_000, paymentStatusAfter: 'refunded' });
  });

  it('credits the balance only when the payment debited it', () => {
    expect(plan(decideRefund(state(), { amountMinor: 2500 }, rules))).to.include({ balanceDeltaMinor: 2500, paymentStatusAfter: 'partially_refunded' });
    expect(plan(decideRefund(state({ via_balance: false }), { amountMinor: 2500 }, rules))).to.include({ balanceDeltaMinor: 0 });
  });

  it('claws back floor(points × refunded / final), never below 0 on the card, and recomputes the level', () => {
    // 1010 points, 100 earned: refunding half claws 50 and drops the card to 960 points, level 0.
    expect(plan(decideRefund(state(), { amountMinor: 5000 }, rules))).to.include({ pointsClawed: 50, pointsAfter: 960, levelAfter: 0 });
    expect(plan(decideRefund(state({}, { points: 30 }), { amountMinor: 10_000 }, rules))).to.include({ pointsClawed: 30, pointsAfter: 0 });
    expect(plan(decideRefund(state(), { amountMinor: 99 }, rules))).to.include({ pointsClawed: 0, levelAfter: 1 });
  });

  it('makes a used voucher usable again only when its payment is refunded in full', () => {
    const voucher = { type: 'voucher' as const, status: 'used', points: 0 };
    expect(plan(decideRefund(state({ points_earned: 0 }, voucher), { amountMinor: 10_000 }, rules)).voucherReusable).to.equal(true);
    expect(plan(decideRefund(state({ points_earned: 0 }, voucher), { amountMinor: 9999 }, rules)).voucherReusable).to.equal(false);
    expect(plan(decideRefund(state(), { amountMinor: 10_000 }, rules)).voucherReusable).to.equal(false);
  });
});

describe('domain/decide-recharge decideRecharge', () => {
  const card = { type: 'prepaid' as const, status: 'active', is_expired: false, balance_minor: 1000 };
  const rules = { maxBalanceMinor: 10_000 };

  it('recharges prepaid and corporate cards only (RECHARGE_NOT_ALLOWED)', () => {
    for (const type of ['standard', 'voucher'] as const) {
      expect(decideRecharge({ card: { ...card, type }, ownerStatus: 'active' }, { amountMinor: 1 }, rules)).to.include({ refused: 'RECHARGE_NOT_ALLOWED' });
      expect(rechargeNotAllowed({ type })?.refused).to.equal('RECHARGE_NOT_ALLOWED');
    }
    expect(rechargeNotAllowed(undefined)?.refused).to.equal('RECHARGE_NOT_ALLOWED');
    expect(rechargeNotAllowed({ type: 'corporate' })).to.equal(null);
  });

  it('refuses with the codes of mayAct: member, card status, expiry', () => {
    expect(decideRecharge({ card, ownerStatus: 'suspended' }, { amountMinor: 1 }, rules)).to.include({ refused: 'MEMBER_SUSPENDED' });
    expect(decideRecharge({ card, ownerStatus: null }, { amountMinor: 1 }, rules)).to.include({ refused: 'MEMBER_SUSPENDED' });
    expect(decideRecharge({ card, ownerStatus: 'active', actorStatus: 'suspended' }, { amountMinor: 1 }, rules)).to.include({ refused: 'MEMBER_SUSPENDED' });
    expect(decideRecharge({ card: { ...card, status: 'closed' }, ownerStatus: 'active' }, { amountMinor: 1 }, rules)).to.include({ refused: 'CARD_NOT_ACTIVE' });
    expect(decideRecharge({ card: { ...card, is_expired: true }, ownerStatus: 'active' }, { amountMinor: 1 }, rules)).to.include({ refused: 'CARD_EXPIRED' });
  });

  it('keeps the balance within MAX_BALANCE (BALANCE_LIMIT_EXCEEDED)', () => {
    expect(decideRecharge({ card, ownerStatus: 'active' }, { amountMinor: 9001 }, rules)).to.deep.equal({
      refused: 'BALANCE_LIMIT_EXCEEDED',
      message: 'A card may hold at most 100.00',
      details: { balance: '10.00' },
    });
    expect(decideRecharge({ card, ownerStatus: 'active' }, { amountMinor: 9000 }, rules)).to.deep.equal({ amountMinor: 9000, balanceDeltaMinor: 9000, balanceAfterMinor: 10_000 });
  });
});
