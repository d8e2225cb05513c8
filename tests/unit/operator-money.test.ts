import { expect } from 'chai';
import { adjustmentNeedsApproval, decideAdjustment, type AdjustmentPlan } from '../../domain/decide-adjustment.js';
import { decideRecharge } from '../../domain/decide-recharge.js';
import { decideRechargeReversal, type RechargeReversalPlan, type RechargeReversalState } from '../../domain/decide-recharge-reversal.js';
import { isRefusal, type Refusal } from '../../domain/decision.js';
import { AppError } from '../../domain/errors.js';
import { parseSignedAmount } from '../../domain/money.js';
import { LIVE_UNTIL, PRESENTED } from './decisions-fixtures.js';

const planOf = <P extends object>(decision: P | Refusal): P => {
  if (isRefusal(decision)) throw new Error(`refused: ${decision.refused}`);
  return decision;
};

describe('domain/money parseSignedAmount', () => {
  it('reads a leading minus, in a string or a JSON number (kept as its text)', () => {
    expect(parseSignedAmount('-25.00', 100_000)).to.equal(-2500);
    expect(parseSignedAmount('-25', 100_000)).to.equal(-2500);
    expect(parseSignedAmount('25.5', 100_000)).to.equal(2550);
    expect(parseSignedAmount(-0.01, 100_000)).to.equal(-1);
    expect(parseSignedAmount('-1000.00', 100_000)).to.equal(-100_000);
  });

  it('refuses 0 either way, more than 2 decimals, exponents, double signs, a plus, and more than the maximum either way', () => {
    for (const bad of ['0', '-0', '-0.00', 0, '-1.234', '-1e3', '--5', '+5', '- 5', '-', '', 'abc', '-100000.01', '100000.01', -100_000.01, Number.NaN]) {
      expect(() => parseSignedAmount(bad, 10_000_000), String(bad)).to.throw(AppError).with.property('code', 'AMOUNT_INVALID');
    }
    expect(() => parseSignedAmount('-1000.01', 100_000)).to.throw(AppError);
    expect(() => parseSignedAmount('1000.01', 100_000)).to.throw(AppError);
  });
});

describe('domain/decide-adjustment', () => {
  const card = (balance: number, extra: Partial<{ type: 'standard' | 'prepaid' | 'corporate' | 'voucher'; status: string }> = {}) => ({ card: { type: 'prepaid' as const, status: 'active', balance_minor: balance, ...extra } });
  const rules = { maxBalanceMinor: 100_000 };

  it('moves the balance by the signed amount, down to exactly 0 and up to exactly MAX_BALANCE', () => {
    expect(planOf<AdjustmentPlan>(decideAdjustment(card(2500), { amountMinor: -2500 }, rules))).to.deep.equal({ deltaMinor: -2500, balanceAfterMinor: 0 });
    expect(planOf<AdjustmentPlan>(decideAdjustment(card(2500), { amountMinor: 97_500 }, rules))).to.deep.equal({ deltaMinor: 97_500, balanceAfterMinor: 100_000 });
  });

  it('never below 0 (INSUFFICIENT_BALANCE) and never above MAX_BALANCE (BALANCE_LIMIT_EXCEEDED)', () => {
    expect(decideAdjustment(card(2500), { amountMinor: -2501 }, rules)).to.deep.include({ refused: 'INSUFFICIENT_BALANCE', details: { balance: '25.00', amount: '-25.01' } });
    expect(decideAdjustment(card(2500), { amountMinor: 97_501 }, rules)).to.include({ refused: 'BALANCE_LIMIT_EXCEEDED' });
  });

  it('only cards that hold a balance, and any status but closed (a frozen or expired card can be corrected)', () => {
    expect(decideAdjustment(card(0, { type: 'standard' }), { amountMinor: 100 }, rules)).to.include({ refused: 'RECHARGE_NOT_ALLOWED' });
    expect(decideAdjustment({ card: undefined }, { amountMinor: 100 }, rules)).to.include({ refused: 'RECHARGE_NOT_ALLOWED' });
    expect(decideAdjustment(card(500, { status: 'closed' }), { amountMinor: -100 }, rules)).to.include({ refused: 'CARD_NOT_ACTIVE' });
    for (const status of ['frozen', 'expired', 'used']) expect(planOf<AdjustmentPlan>(decideAdjustment(card(500, { status }), { amountMinor: -100 }, rules)).balanceAfterMinor, status).to.equal(400);
    for (const type of ['corporate', 'voucher'] as const) expect(planOf<AdjustmentPlan>(decideAdjustment(card(500, { type }), { amountMinor: 100 }, rules)).balanceAfterMinor, type).to.equal(600);
  });

  it('four eyes above ADJUSTMENT_APPROVAL_OVER either way; exactly the threshold goes through', () => {
    expect(adjustmentNeedsApproval(100_000, 100_000)).to.equal(false);
    expect(adjustmentNeedsApproval(-100_000, 100_000)).to.equal(false);
    expect(adjustmentNeedsApproval(100_001, 100_000)).to.equal(true);
    expect(adjustmentNeedsApproval(-100_001, 100_000)).to.equal(true);
    expect(adjustmentNeedsApproval(-1, 0)).to.equal(true);
  });
});

describe('domain/decide-recharge-reversal', () => {
  const state = (recharge: Partial<NonNullable<RechargeReversalState['recharge']>> = {}, card: Partial<NonNullable<RechargeReversalState['card']>> = {}): RechargeReversalState => ({
    card: { id: 'card-1', status: 'active', balance_minor: 50_000, ...card },
    recharge: { card_id: 'card-1', final_amount_minor: 30_000, refunded_amount_minor: 0, ...recharge },
  });

  it("refuses a recharge that is not this card's, or none (ORIGINAL_TX_NOT_FOUND), and a closed card (CARD_NOT_ACTIVE)", () => {
    expect(decideRechargeReversal({ ...state(), recharge: undefined }, { amountMinor: 1 })).to.include({ refused: 'ORIGINAL_TX_NOT_FOUND' });
    expect(decideRechargeReversal({ ...state(), card: undefined }, { amountMinor: 1 })).to.include({ refused: 'ORIGINAL_TX_NOT_FOUND' });
    expect(decideRechargeReversal(state({ card_id: 'card-2' }), { amountMinor: 1 })).to.include({ refused: 'ORIGINAL_TX_NOT_FOUND' });
    expect(decideRechargeReversal(state({}, { status: 'closed' }), { amountMinor: 1 })).to.include({ refused: 'CARD_NOT_ACTIVE' });
  });

  it('up to what is left of the recharge (REFUND_EXCEEDS_AVAILABLE), cumulatively; in full it reads refunded', () => {
    expect(decideRechargeReversal(state({ refunded_amount_minor: 10_000 }), { amountMinor: 20_001 })).to.deep.include({ refused: 'REFUND_EXCEEDS_AVAILABLE', details: { available: '200.00' } });
    expect(planOf<RechargeReversalPlan>(decideRechargeReversal(state({ refunded_amount_minor: 10_000 }), { amountMinor: 20_000 }))).to.deep.equal({
      amountMinor: 20_000,
      balanceDeltaMinor: -20_000,
      balanceAfterMinor: 30_000,
      reversedTotalMinor: 30_000,
      rechargeStatusAfter: 'refunded',
    });
    expect(planOf<RechargeReversalPlan>(decideRechargeReversal(state(), { amountMinor: 100 })).rechargeStatusAfter).to.equal('partially_refunded');
  });

  it('refuses what the card has spent (INSUFFICIENT_BALANCE), after the recharge check; exactly the balance goes', () => {
    expect(decideRechargeReversal(state({}, { balance_minor: 9_999 }), { amountMinor: 10_000 })).to.deep.include({ refused: 'INSUFFICIENT_BALANCE', details: { balance: '99.99', needed: '100.00' } });
    expect(decideRechargeReversal(state({}, { balance_minor: 9_999 }), { amountMinor: 30_001 })).to.include({ refused: 'REFUND_EXCEEDS_AVAILABLE' });
    expect(planOf<RechargeReversalPlan>(decideRechargeReversal(state({}, { balance_minor: 10_000 }), { amountMinor: 10_000 })).balanceAfterMinor).to.equal(0);
  });
});

describe('domain/decide-recharge at the till', () => {
  const card = { id: 'card-1', type: 'prepaid' as const, status: 'active', is_expired: false, balance_minor: 1000 };
  const rules = { maxBalanceMinor: 10_000 };
  const till = (extra: Partial<{ qr: { cardId: string | null; expiresAt: Date | null }; payerRole: string | null; merchantStatus: string | null }> = {}) => ({
    qr: { cardId: 'card-1', expiresAt: LIVE_UNTIL },
    presentedAt: PRESENTED,
    payerRole: 'owner',
    merchantStatus: 'active',
    ...extra,
  });

  it('credits the card of a live QR, like a recharge by card', () => {
    expect(decideRecharge({ card, ownerStatus: 'active', actorStatus: 'active', till: till() }, { amountMinor: 500 }, rules)).to.deep.equal({ amountMinor: 500, balanceDeltaMinor: 500, balanceAfterMinor: 1500 });
  });

  it('judges the QR first: unknown, of another card, expired when presented (QR_EXPIRED_OR_INVALID)', () => {
    expect(decideRecharge({ card: undefined, ownerStatus: null, till: till({ qr: { cardId: null, expiresAt: null } }) }, { amountMinor: 1 }, rules)).to.include({ refused: 'QR_EXPIRED_OR_INVALID' });
    expect(decideRecharge({ card, ownerStatus: 'active', till: till({ qr: { cardId: 'card-2', expiresAt: LIVE_UNTIL } }) }, { amountMinor: 1 }, rules)).to.include({ refused: 'QR_EXPIRED_OR_INVALID' });
    expect(decideRecharge({ card, ownerStatus: 'active', till: till({ qr: { cardId: 'card-1', expiresAt: PRESENTED } }) }, { amountMinor: 1 }, rules)).to.include({ refused: 'QR_EXPIRED_OR_INVALID' });
    // A standard card's live QR is valid, but the card takes no stored value.
    expect(decideRecharge({ card: { ...card, type: 'standard' }, ownerStatus: 'active', till: till() }, { amountMinor: 1 }, rules)).to.include({ refused: 'RECHARGE_NOT_ALLOWED' });
  });

  it('a suspended merchant (MERCHANT_SUSPENDED), an unbound or viewer member (QR_EXPIRED_OR_INVALID), a suspended member, the card and the balance limit', () => {
    expect(decideRecharge({ card, ownerStatus: 'active', till: till({ merchantStatus: 'suspended' }) }, { amountMinor: 1 }, rules)).to.include({ refused: 'MERCHANT_SUSPENDED' });
    expect(decideRecharge({ card, ownerStatus: 'active', till: till({ payerRole: null }) }, { amountMinor: 1 }, rules)).to.include({ refused: 'QR_EXPIRED_OR_INVALID' });
    expect(decideRecharge({ card, ownerStatus: 'active', till: till({ payerRole: 'viewer' }) }, { amountMinor: 1 }, rules)).to.include({ refused: 'QR_EXPIRED_OR_INVALID' });
    expect(decideRecharge({ card, ownerStatus: 'active', actorStatus: 'suspended', till: till({ payerRole: 'member' }) }, { amountMinor: 1 }, rules)).to.include({ refused: 'MEMBER_SUSPENDED' });
    expect(decideRecharge({ card: { ...card, status: 'frozen' }, ownerStatus: 'active', till: till() }, { amountMinor: 1 }, rules)).to.include({ refused: 'CARD_NOT_ACTIVE' });
    expect(decideRecharge({ card, ownerStatus: 'active', till: till() }, { amountMinor: 9001 }, rules)).to.include({ refused: 'BALANCE_LIMIT_EXCEEDED' });
  });
});
