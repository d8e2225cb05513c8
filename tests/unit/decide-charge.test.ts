import { expect } from 'chai';
import { decideCharge, type ChargePlan } from '../../domain/decide-charge.js';
import { isRefusal } from '../../domain/decision.js';
import { chargeState, LEVELS, PRESENTED } from './decisions-fixtures.js';

const request = (amountMinor: number, paymentMethod: string | null = null) => ({ amountMinor, paymentMethod, presentedAt: PRESENTED });
const rules = { levels: LEVELS };
const plan = (decision: ReturnType<typeof decideCharge>): ChargePlan => {
  if (isRefusal(decision)) throw new Error(`refused: ${decision.refused}`);
  return decision;
};

describe('domain/decide-charge decideCharge', () => {
  describe('the QR', () => {
    it('refuses a charge without a card, or with a QR of another card, as an invalid QR', () => {
      expect(decideCharge({ ...chargeState(), card: undefined }, request(100), rules)).to.include({ refused: 'QR_EXPIRED_OR_INVALID', qrInvalid: true });
      expect(decideCharge(chargeState({}, { qr: { cardId: 'card-2', expiresAt: PRESENTED } }), request(100), rules)).to.include({ refused: 'QR_EXPIRED_OR_INVALID', qrInvalid: true });
    });

    it('refuses a QR that expired by the time the operation was accepted, not later', () => {
      expect(decideCharge(chargeState({}, { qr: { cardId: 'card-1', expiresAt: PRESENTED } }), request(100), rules)).to.include({ refused: 'QR_EXPIRED_OR_INVALID' });
      expect(decideCharge(chargeState({}, { qr: { cardId: 'card-1', expiresAt: null } }), request(100), rules)).to.include({ refused: 'QR_EXPIRED_OR_INVALID' });
      expect(isRefusal(decideCharge(chargeState({}, { qr: { cardId: 'card-1', expiresAt: new Date(PRESENTED.getTime() + 1) } }), request(100), rules))).to.equal(false);
    });

    it('refuses a viewer (not counted as an invalid QR)', () => {
      const refused = decideCharge(chargeState({}, { payerRole: 'viewer' }), request(100), rules);
      expect(refused).to.deep.equal({ refused: 'QR_EXPIRED_OR_INVALID', message: 'The QR code is no longer valid for this card' });
    });
  });

  it('refuses with the codes of mayAct: merchant, member, voucher, card status, expiry', () => {
    expect(decideCharge(chargeState({}, { merchantStatus: 'suspended' }), request(100), rules)).to.include({ refused: 'MERCHANT_SUSPENDED' });
    expect(decideCharge(chargeState({}, { ownerStatus: 'suspended' }), request(100), rules)).to.include({ refused: 'MEMBER_SUSPENDED' });
    expect(decideCharge(chargeState({}, { payerStatus: 'suspended' }), request(100), rules)).to.include({ refused: 'MEMBER_SUSPENDED' });
    expect(decideCharge(chargeState({ type: 'voucher', status: 'used' }), request(100), rules)).to.include({ refused: 'VOUCHER_ALREADY_USED' });
    expect(decideCharge(chargeState({ status: 'frozen' }), request(100), rules)).to.include({ refused: 'CARD_NOT_ACTIVE', message: 'The card is frozen' });
    expect(decideCharge(chargeState({ is_expired: true }), request(100), rules)).to.include({ refused: 'CARD_EXPIRED' });
  });

  it('refuses a standard card without a payment method (PAYMENT_METHOD_REQUIRED)', () => {
    expect(decideCharge(chargeState({ type: 'standard' }), request(100), rules)).to.include({ refused: 'PAYMENT_METHOD_REQUIRED' });
  });

  it('refuses a balance that is short of the final amount (INSUFFICIENT_BALANCE), with both amounts', () => {
    expect(decideCharge(chargeState({ balance_minor: 9999 }), request(10_000), rules)).to.deep.equal({
      refused: 'INSUFFICIENT_BALANCE',
      message: 'The card balance is not enough for this payment',
      details: { balance: '99.99', needed: '100.00' },
    });
    // The discounted amount is what must be covered: 10 000 at 0.950 is 9 500.
    expect(plan(decideCharge(chargeState({ balance_minor: 9500, points: 1000, level: 1 }), request(10_000), rules)).balanceAfterMinor).to.equal(0);
  });

  it('charges a standard card through its method: no balance moves, points earned', () => {
    const p = plan(decideCharge(chargeState({ type: 'standard', balance_minor: 0 }), request(29_999, 'card'), rules));
    expect(p).to.include({ rawMinor: 29_999, discountMilli: 1000, finalMinor: 29_999, viaBalance: false, balanceDeltaMinor: 0, pointsEarned: 299, paymentMethod: 'card', voucherUsed: false });
  });

  it('discounts by the level before the payment, rounds half up, and recomputes the level after the points', () => {
    // 999 points is level 0 (no discount); the payment brings 10 points and level 1.
    const before = plan(decideCharge(chargeState({ points: 999, level: 0 }), request(1000), rules));
    expect(before).to.include({ discountMilli: 1000, finalMinor: 1000, pointsEarned: 10, pointsAfter: 1009, levelAfter: 1 });
    // 1 000 points is silver (0.950): 0.10 × 0.95 = 0.095 → 0.10 (half up); 0.01 × 0.95 = 0.0095 → 0.01.
    expect(plan(decideCharge(chargeState({ points: 1000, level: 1 }), request(10), rules))).to.include({ discountMilli: 950, finalMinor: 10, pointsEarned: 0, levelAfter: 1 });
    expect(plan(decideCharge(chargeState({ points: 1000, level: 1 }), request(1), rules))).to.include({ finalMinor: 1 });
    expect(plan(decideCharge(chargeState({ points: 10_000, level: 3 }), request(12_345), rules))).to.include({ discountMilli: 850, finalMinor: 10_493, balanceDeltaMinor: -10_493, paymentMethod: 'balance' });
  });

  it('keeps the level as it is when no points are earned', () => {
    expect(plan(decideCharge(chargeState({ points: 5000, level: 1 }), request(50), rules))).to.include({ pointsEarned: 0, levelAfter: 1 });
  });

  it('gives corporate cards their fixed rate and no points', () => {
    const p = plan(decideCharge(chargeState({ type: 'corporate', fixed_discount: '0.800', points: 20_000 }), request(10_000), rules));
    expect(p).to.include({ discountMilli: 800, finalMinor: 8000, pointsEarned: 0, viaBalance: true });
  });

  it('uses a voucher up at full price, without points', () => {
    const p = plan(decideCharge(chargeState({ type: 'voucher', points: 20_000 }), request(5000), rules));
    expect(p).to.include({ discountMilli: 1000, finalMinor: 5000, pointsEarned: 0, voucherUsed: true, balanceDeltaMinor: -5000 });
  });

  it('is pure: the state it is given is left as it was', () => {
    const state = chargeState();
    const copy = structuredClone(state);
    decideCharge(state, request(100), rules);
    expect(state).to.deep.equal(copy);
  });
});
