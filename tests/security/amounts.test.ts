import { expect } from 'chai';
import { countRows, createMember, createMerchant, issueCard } from '../helpers/fixtures.js';
import { formatMinor } from '../../domain/money.js';
import { chargeOk, expectSucceeded, getCard, issueQr } from '../helpers/money.js';
import { startSystem, type TestSystem } from '../helpers/system.js';
import { expectCode, opHeaders, postRaw } from './helpers.js';

/**
 * Finding: amounts sent as JSON numbers were judged after JSON.parse, so `1e2` became 100,
 * `1.999999999999999999` became 2 and `1e-2` became 0.01: the request's own text was not
 * checked. API.md "Security rules": numbers follow the same text rule as strings (no exponent,
 * ≤ 2 decimals), judged on the request's characters → else 400 AMOUNT_INVALID. Every body here
 * is written by hand, so the server receives exactly these characters.
 */

const REFUSED_NUMBERS = ['1e2', '2.5e1', '1e-2', '1E2', '1.999999999999999999', '10.001'];

describe('security: amounts as JSON numbers are judged on the request text', function () {
  this.timeout(60_000);
  let sys: TestSystem;
  let merchantKey: string;
  let merchantId: string;

  before(async () => {
    sys = await startSystem({ CARD_PARTITIONS: 2 });
    const m = await createMerchant(sys);
    merchantKey = m.key;
    merchantId = m.merchant.id;
  });
  after(async () => {
    await sys?.stop();
  });

  describe('POST /v1/payments', () => {
    it('a missing or null amount is 400 VALIDATION_ERROR saying what an amount looks like', async () => {
      for (const body of ['{"qr":"mpsq_x","payment_method":"cash"}', '{"qr":"mpsq_x","amount":null,"payment_method":"cash"}']) {
        const res = await postRaw(sys, '/v1/payments', body, merchantKey, opHeaders());
        expectCode(res, 400, 'VALIDATION_ERROR', body);
        expect(res.body.error.message, body).to.match(/amount: .*an amount such as 299 or "299\.00"/);
        expect(res.body.error.message, body).to.not.contain('Invalid input');
      }
    });

    for (const amount of REFUSED_NUMBERS) {
      it(`amount ${amount} (a JSON number) → 400 AMOUNT_INVALID, no operation`, async () => {
        const member = await createMember(sys);
        const qr = await issueQr(sys, member.cards[0]!.id);
        const before = await countRows(sys, 'operations', { merchant_id: merchantId });
        const res = await postRaw(sys, '/v1/payments', `{"qr":"${qr}","amount":${amount},"payment_method":"cash"}`, merchantKey, opHeaders());
        expectCode(res, 400, 'AMOUNT_INVALID', `amount ${amount}`);
        expect(await countRows(sys, 'operations', { merchant_id: merchantId })).to.equal(before);
        expect(await countRows(sys, 'transactions', { card_id: member.cards[0]!.id })).to.equal(0);
      });
    }

    for (const [amount, raw] of [['299.00', '299.00'], ['12.5', '12.50'], ['7', '7.00']] as const) {
      it(`amount ${amount} (a JSON number) is accepted with raw_amount "${raw}"`, async () => {
        const member = await createMember(sys);
        const qr = await issueQr(sys, member.cards[0]!.id);
        const res = await postRaw(sys, '/v1/payments', `{"qr":"${qr}","amount":${amount},"payment_method":"cash"}`, merchantKey, opHeaders());
        const op = expectSucceeded(res, `payment ${amount}`);
        expect(op.result!.raw_amount).to.equal(raw);
      });
    }
  });

  describe('POST /v1/refunds', () => {
    let txNo: string;
    before(async () => {
      const member = await createMember(sys);
      txNo = (await chargeOk(sys, merchantKey, member.cards[0]!.id, '100.00', { payment_method: 'cash' })).result!.tx_no as string;
    });

    for (const amount of ['1e1', '2.5E1', '1.999999999999999999', '5.001']) {
      it(`amount ${amount} → 400 AMOUNT_INVALID, no refund operation`, async () => {
        const before = await countRows(sys, 'operations', { merchant_id: merchantId, type: 'refund' });
        const res = await postRaw(sys, '/v1/refunds', `{"original_tx_no":"${txNo}","amount":${amount}}`, merchantKey, opHeaders());
        expectCode(res, 400, 'AMOUNT_INVALID', `refund ${amount}`);
        expect(await countRows(sys, 'operations', { merchant_id: merchantId, type: 'refund' })).to.equal(before);
      });
    }

    it('amount 10.5 (a JSON number) is accepted as "10.50"', async () => {
      const res = await postRaw(sys, '/v1/refunds', `{"original_tx_no":"${txNo}","amount":10.5}`, merchantKey, opHeaders());
      const op = expectSucceeded(res, 'refund 10.5');
      expect(op.result!.amount).to.equal('10.50');
    });
  });

  describe('POST /v1/cards/:id/recharges (admin)', () => {
    let cardId: string;
    before(async () => {
      const member = await createMember(sys);
      cardId = (await issueCard(sys, { type: 'prepaid', ownerMemberId: member.id })).id;
    });

    for (const amount of ['1e2', '1.999999999999999999', '3.005']) {
      it(`amount ${amount} → 400 AMOUNT_INVALID, no recharge operation`, async () => {
        const before = await countRows(sys, 'operations', { card_id: cardId });
        const res = await postRaw(sys, `/v1/cards/${cardId}/recharges`, `{"amount":${amount},"payment_method":"cash"}`, sys.adminKey, opHeaders());
        expectCode(res, 400, 'AMOUNT_INVALID', `recharge ${amount}`);
        expect(await countRows(sys, 'operations', { card_id: cardId })).to.equal(before);
      });
    }

    it('amount 100.10 (a JSON number) is accepted as "100.10"', async () => {
      const before = Math.round(Number((await getCard(sys, cardId)).balance) * 100);
      const res = await postRaw(sys, `/v1/cards/${cardId}/recharges`, `{"amount":100.10,"payment_method":"cash"}`, sys.adminKey, opHeaders());
      const op = expectSucceeded(res, 'recharge 100.10');
      expect(op.result!.amount).to.equal('100.10');
      expect(op.result!.balance).to.equal(formatMinor(before + 10_010));
    });
  });

  describe('POST /v1/cards voucher face_value (admin)', () => {
    for (const value of ['1e2', '2.5e1', '1.999999999999999999']) {
      it(`face_value ${value} → 400 AMOUNT_INVALID, no card`, async () => {
        const member = await createMember(sys);
        const res = await postRaw(sys, '/v1/cards', `{"type":"voucher","owner_member_id":"${member.id}","face_value":${value}}`, sys.adminKey);
        expectCode(res, 400, 'AMOUNT_INVALID', `face_value ${value}`);
        expect(await countRows(sys, 'member_cards', { owner_member_id: member.id, type: 'voucher' })).to.equal(0);
      });
    }

    it('face_value 25.5 (a JSON number) is accepted as "25.50"', async () => {
      const member = await createMember(sys);
      const res = await postRaw(sys, '/v1/cards', `{"type":"voucher","owner_member_id":"${member.id}","face_value":25.5}`, sys.adminKey);
      expect(res.status, res.text).to.equal(201);
      expect(res.body.balance).to.equal('25.50');
    });
  });
});
