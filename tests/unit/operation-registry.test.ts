import { expect } from 'chai';
import fc from 'fast-check';
import { CHARGE_REFUSALS, decideCharge } from '../../domain/decide-charge.js';
import { decideRecharge, RECHARGE_REFUSALS } from '../../domain/decide-recharge.js';
import { decideRefund, REFUND_REFUSALS } from '../../domain/decide-refund.js';
import { isRefusal } from '../../domain/decision.js';
import type { CardType } from '../../domain/discount.js';
import { TERMINAL_OPERATION_CODES } from '../../domain/errors.js';
import { ADJUSTMENT_REFUSALS, decideAdjustment } from '../../domain/decide-adjustment.js';
import { decideRechargeReversal, RECHARGE_REVERSAL_REFUSALS } from '../../domain/decide-recharge-reversal.js';
import { assertKindsDistinct, BALANCE_REASONS, EVENT_TYPES, kindOf, OPERATION_KINDS, OPERATION_TYPES, REGISTRY_CHECKS, TRANSACTION_TYPES, WEBHOOK_EVENTS } from '../../operations/index.js';
import { routesOf } from '../../operations/kind.js';
import { LEVELS, PRESENTED } from './decisions-fixtures.js';

const options = { seed: Number(process.env.FC_SEED ?? 20_261_201), numRuns: Number(process.env.FC_RUNS ?? 500) };
const status = fc.constantFrom('active', 'frozen', 'used', 'expired', 'closed', 'suspended', 'erased');
const maybeStatus = fc.option(status, { nil: null });
const card = fc.record({
  id: fc.constantFrom('card-1', 'card-2'),
  type: fc.constantFrom<CardType>('standard', 'prepaid', 'corporate', 'voucher'),
  status,
  is_expired: fc.boolean(),
  balance_minor: fc.nat({ max: 1_000_000 }),
  points: fc.nat({ max: 50_000 }),
  level: fc.constantFrom(...LEVELS.map((l) => l.level)),
  fixed_discount: fc.constantFrom(null, '0.900'),
});
const amount = fc.integer({ min: 1, max: 2_000_000 });

describe('operations registry', () => {
  it('derives one type per kind, and every list from the kinds', () => {
    expect(OPERATION_TYPES).to.deep.equal(OPERATION_KINDS.map((k) => k.type));
    expect(new Set(OPERATION_TYPES).size).to.equal(OPERATION_TYPES.length);
    for (const kind of OPERATION_KINDS) {
      // Only internal kinds (follow-ups, no route) may emit no event: the operation they end does.
      if (!kind.events) expect(kind.http, kind.type).to.equal(undefined);
      if (kind.events) expect(WEBHOOK_EVENTS, kind.type).to.include(kind.events.succeeded);
      if (kind.events?.failed) expect(WEBHOOK_EVENTS, kind.type).to.include(kind.events.failed);
      for (const t of kind.transactionTypes) expect(TRANSACTION_TYPES).to.include(t);
    }
    expect(EVENT_TYPES).to.include.members(WEBHOOK_EVENTS);
    expect(REGISTRY_CHECKS.find((c) => c.constraint === 'operations_type')!.values).to.deep.equal(OPERATION_TYPES);
  });

  it("every kind's refusal codes are terminal codes of API.md", () => {
    for (const kind of OPERATION_KINDS) expect(TERMINAL_OPERATION_CODES, kind.type).to.include.members([...kind.refusals]);
  });

  it('decideCharge refuses only with the codes the payment kind declares, whatever the state', () => {
    fc.assert(
      fc.property(fc.option(card, { nil: undefined }), fc.constantFrom('card-1', 'card-2', null), fc.boolean(), maybeStatus, maybeStatus, maybeStatus, fc.constantFrom(null, 'owner', 'member', 'viewer'), amount, fc.constantFrom(null, 'cash'), (c, qrCard, live, merchant, owner, payer, role, raw, method) => {
        const state = { card: c, qr: { cardId: qrCard, expiresAt: live ? new Date(PRESENTED.getTime() + 1000) : null }, payerRole: role, merchantStatus: merchant, ownerStatus: owner, payerStatus: payer };
        const decision = decideCharge(state, { amountMinor: raw, paymentMethod: method, presentedAt: PRESENTED }, { levels: LEVELS });
        if (isRefusal(decision)) expect(CHARGE_REFUSALS).to.include(decision.refused);
        else expect(c!.type === 'standard' || c!.balance_minor >= decision.finalMinor).to.equal(true);
      }),
      options,
    );
  });

  it('decideRecharge and decideRefund refuse only with the codes their kinds declare', () => {
    fc.assert(
      fc.property(fc.option(card, { nil: undefined }), maybeStatus, maybeStatus, amount, (c, owner, actor, raw) => {
        const decision = decideRecharge({ card: c, ownerStatus: owner, actorStatus: actor }, { amountMinor: raw }, { maxBalanceMinor: 1_500_000 });
        if (isRefusal(decision)) expect(RECHARGE_REFUSALS).to.include(decision.refused);
      }),
      options,
    );
    fc.assert(
      fc.property(card, fc.nat({ max: 100_000 }), fc.nat({ max: 100_000 }), fc.boolean(), fc.boolean(), amount, (c, final, refunded, viaBalance, windowPassed, raw) => {
        const payment = { card_id: c.id, final_amount_minor: final, refunded_amount_minor: Math.min(refunded, final), points_earned: Math.floor(final / 100), via_balance: viaBalance, window_passed: windowPassed };
        const decision = decideRefund({ card: c, payment }, { amountMinor: raw }, { refundWindowDays: 30, levels: LEVELS });
        if (isRefusal(decision)) expect(REFUND_REFUSALS).to.include(decision.refused);
        else expect(decision.refundedTotalMinor).to.be.at.most(final);
      }),
      options,
    );
  });

  it('decideAdjustment and decideRechargeReversal refuse only with the codes their kinds declare', () => {
    fc.assert(
      fc.property(fc.option(card, { nil: undefined }), fc.integer({ min: -2_000_000, max: 2_000_000 }).filter((a) => a !== 0), (c, delta) => {
        const decision = decideAdjustment({ card: c }, { amountMinor: delta }, { maxBalanceMinor: 1_500_000 });
        if (isRefusal(decision)) expect(ADJUSTMENT_REFUSALS).to.include(decision.refused);
        else expect(decision.balanceAfterMinor).to.be.within(0, 1_500_000);
      }),
      options,
    );
    fc.assert(
      fc.property(fc.option(card, { nil: undefined }), fc.constantFrom('card-1', 'card-2'), fc.nat({ max: 100_000 }), fc.nat({ max: 100_000 }), amount, (c, rechargeCard, final, reversed, raw) => {
        const recharge = { card_id: rechargeCard, final_amount_minor: final, refunded_amount_minor: Math.min(reversed, final) };
        const decision = decideRechargeReversal({ card: c, recharge }, { amountMinor: raw });
        if (isRefusal(decision)) expect(RECHARGE_REVERSAL_REFUSALS).to.include(decision.refused);
        else expect(decision.reversedTotalMinor).to.be.at.most(final);
      }),
      options,
    );
    expect(kindOf('adjustment').refusals).to.deep.equal(ADJUSTMENT_REFUSALS);
    expect(kindOf('recharge_reversal').refusals).to.deep.equal(RECHARGE_REVERSAL_REFUSALS);
  });

  it('a kind may have several routes (a recharge by card id, and at the till by QR): each path once, all of the one type', () => {
    expect(() => assertKindsDistinct()).to.not.throw();
    const recharge = routesOf(kindOf('recharge'));
    expect(recharge.map((r) => [r.http.path, r.card, [...r.http.roles]])).to.deep.equal([
      ['/cards/:id/recharges', 'request', ['app', 'admin']],
      ['/recharges', 'qr', ['merchant']],
    ]);
    const paths = OPERATION_KINDS.flatMap((k) => routesOf(k).map((r) => r.http.path));
    expect(new Set(paths).size).to.equal(paths.length);
    expect(TRANSACTION_TYPES).to.include.members(['adjustment', 'recharge_reversal']);
    expect(BALANCE_REASONS).to.include.members(['adjustment', 'recharge_reversal']);
    expect(OPERATION_KINDS.filter((k) => k.needsApproval).map((k) => k.type)).to.deep.equal(['adjustment']);
  });
});
