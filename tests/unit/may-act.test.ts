import { expect } from 'chai';
import { mayAct, type ActingCard } from '../../domain/may-act.js';

const card = (over: Partial<ActingCard> = {}): ActingCard => ({ type: 'prepaid', status: 'active', is_expired: false, ...over });
const active = { ownerStatus: 'active', actorStatus: 'active', merchantStatus: 'active' };

describe('domain/may-act mayAct', () => {
  it('lets an active card of active members act', () => {
    for (const purpose of ['pay', 'recharge', 'issue-qr'] as const) expect(mayAct(card(), active, { role: 'owner' }, purpose)).to.equal(null);
  });

  for (const status of ['frozen', 'closed', 'used']) {
    it(`refuses a ${status} card with CARD_NOT_ACTIVE`, () => {
      for (const purpose of ['pay', 'recharge', 'issue-qr'] as const) {
        expect(mayAct(card({ status }), active, undefined, purpose)).to.deep.equal({ refused: 'CARD_NOT_ACTIVE', message: `The card is ${status}` });
      }
    });
  }

  it('refuses a used voucher with VOUCHER_ALREADY_USED, before the status', () => {
    expect(mayAct(card({ type: 'voucher', status: 'used' }), active, { role: 'owner' }, 'pay')?.refused).to.equal('VOUCHER_ALREADY_USED');
    expect(mayAct(card({ type: 'voucher', status: 'used' }), active, { role: 'owner' }, 'issue-qr')?.refused).to.equal('VOUCHER_ALREADY_USED');
  });

  it('refuses an expired card with CARD_EXPIRED, after the status', () => {
    expect(mayAct(card({ is_expired: true }), active, undefined, 'pay')?.refused).to.equal('CARD_EXPIRED');
    expect(mayAct(card({ is_expired: true, status: 'frozen' }), active, undefined, 'pay')?.refused).to.equal('CARD_NOT_ACTIVE');
  });

  it('refuses a suspended owner or actor with MEMBER_SUSPENDED', () => {
    expect(mayAct(card(), { ...active, ownerStatus: 'suspended' }, { role: 'owner' }, 'pay')?.refused).to.equal('MEMBER_SUSPENDED');
    expect(mayAct(card(), { ...active, actorStatus: 'suspended' }, { role: 'owner' }, 'pay')?.refused).to.equal('MEMBER_SUSPENDED');
    expect(mayAct(card(), { ...active, actorStatus: null }, { role: 'owner' }, 'pay')?.refused).to.equal('MEMBER_SUSPENDED');
    expect(mayAct(card(), { ownerStatus: 'suspended' }, undefined, 'recharge')?.refused).to.equal('MEMBER_SUSPENDED');
    expect(mayAct(card(), { actorStatus: 'suspended' }, { role: 'owner' }, 'issue-qr')?.refused).to.equal('MEMBER_SUSPENDED');
  });

  it('does not check a party that is not part of the check', () => {
    expect(mayAct(card(), { ownerStatus: 'active' }, undefined, 'recharge')).to.equal(null);
    expect(mayAct(card(), { actorStatus: 'active' }, { role: 'member' }, 'issue-qr')).to.equal(null);
  });

  it('checks members before the card when paying or recharging, after it when issuing a QR', () => {
    const frozenOfSuspended = [card({ status: 'frozen' }), { ownerStatus: 'suspended', actorStatus: 'suspended' }] as const;
    expect(mayAct(...frozenOfSuspended, undefined, 'pay')?.refused).to.equal('MEMBER_SUSPENDED');
    expect(mayAct(...frozenOfSuspended, undefined, 'recharge')?.refused).to.equal('MEMBER_SUSPENDED');
    expect(mayAct(...frozenOfSuspended, { role: 'owner' }, 'issue-qr')?.refused).to.equal('CARD_NOT_ACTIVE');
  });

  it('refuses a viewer or an unbound member: the QR is invalid for a payment', () => {
    expect(mayAct(card(), active, { role: 'viewer' }, 'pay')).to.deep.equal({ refused: 'QR_EXPIRED_OR_INVALID', message: 'The QR code is no longer valid for this card' });
    expect(mayAct(card(), active, { role: null }, 'pay')?.refused).to.equal('QR_EXPIRED_OR_INVALID');
  });

  it('refuses a viewer a QR (FORBIDDEN) and an unbound member (NOT_FOUND)', () => {
    expect(mayAct(card(), active, { role: 'viewer' }, 'issue-qr')?.refused).to.equal('FORBIDDEN');
    expect(mayAct(card(), active, { role: null }, 'issue-qr')?.refused).to.equal('NOT_FOUND');
  });

  it('refuses a suspended merchant with MERCHANT_SUSPENDED, after the binding and before the members', () => {
    expect(mayAct(card(), { ...active, merchantStatus: 'suspended', ownerStatus: 'suspended' }, { role: 'owner' }, 'pay')?.refused).to.equal('MERCHANT_SUSPENDED');
    expect(mayAct(card(), { ...active, merchantStatus: 'suspended' }, { role: 'viewer' }, 'pay')?.refused).to.equal('QR_EXPIRED_OR_INVALID');
  });
});
