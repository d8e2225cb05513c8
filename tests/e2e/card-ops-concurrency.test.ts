import { expect } from 'chai';
import { partitionOf } from '../../domain/partition.js';
import { awaitOperation, replaceCard, transfer } from '../helpers/card-ops.js';
import { bind, createMember, createMerchant, issueCard, memberToken, type CardJson } from '../helpers/fixtures.js';
import { charge, expectLedgersMatch, issueQr, rechargeOk, sleep, type OperationJson } from '../helpers/money.js';
import { startSystem, type TestSystem } from '../helpers/system.js';

/** Transfers crossing between two cards, and a replacement racing payments on the old card. */
describe('e2e: concurrency of transfers and replacements', function () {
  this.timeout(180_000);
  let sys: TestSystem;
  let merchantKey: string;

  before(async () => {
    sys = await startSystem();
    merchantKey = (await createMerchant(sys)).key;
  });
  after(async () => {
    await sys.stop();
  });

  const balanceOf = async (id: string) => Number((await sys.deps.db('member_cards').where({ id }).first('balance_minor')).balance_minor);
  const deadlocks = async () => {
    await sys.deps.db.raw('SELECT pg_stat_clear_snapshot()');
    return Number((await sys.deps.db.raw<{ rows: { n: string }[] }>('SELECT deadlocks AS n FROM pg_stat_database WHERE datname = current_database()')).rows[0]!.n);
  };

  /** Two prepaid cards of one owner holding 500.00 each, on different partitions or on the same one. */
  async function pair(samePartition: boolean): Promise<[CardJson, CardJson]> {
    const owner = await createMember(sys);
    const a = await issueCard(sys, { type: 'prepaid', ownerMemberId: owner.id });
    for (;;) {
      const b = await issueCard(sys, { type: 'prepaid', ownerMemberId: owner.id });
      const same = partitionOf(a.id, sys.config.CARD_PARTITIONS) === partitionOf(b.id, sys.config.CARD_PARTITIONS);
      if (same !== samePartition) continue;
      await rechargeOk(sys, a.id, '500.00');
      await rechargeOk(sys, b.id, '500.00');
      return [a, b];
    }
  }

  for (const samePartition of [false, true]) {
    it(`transfers A→B while B→A (${samePartition ? 'one partition' : 'two partitions'}), 3 rounds of 40: no deadlock, every transfer ends once, exact balances`, async () => {
      const [a, b] = await pair(samePartition);
      const deadlocksBefore = await deadlocks();
      let expectedA = 50_000;
      let succeeded = 0;
      for (let round = 0; round < 3; round++) {
        const asks = Array.from({ length: 40 }, (_, i) => ({ aToB: i % 2 === 0, amountMinor: 100 + Math.floor(Math.random() * 6000) }));
        const sent = await Promise.all(asks.map((t) => transfer(sys, { from_card_id: t.aToB ? a.id : b.id, to_card_id: t.aToB ? b.id : a.id, amount: (t.amountMinor / 100).toFixed(2) }, { wait: false })));
        for (const res of sent) expect(res.status, res.text).to.equal(202);
        const ended: OperationJson[] = await Promise.all(sent.map((res) => awaitOperation(sys, res.body.id)));
        for (const [i, op] of ended.entries()) {
          const t = asks[i]!;
          const txs = await sys.deps.db('transactions').whereIn('operation_id', [op.id, `${op.id}-credit`, `${op.id}-end`]);
          if (op.status === 'succeeded') {
            succeeded++;
            expectedA += t.aToB ? -t.amountMinor : t.amountMinor;
            expect(txs.map((x) => x.type).sort()).to.deep.equal(['transfer_credit', 'transfer_debit']);
          } else {
            // Both cards are open: only the source's balance can refuse, at the debit, before anything moved.
            expect(op.error!.code).to.equal('INSUFFICIENT_BALANCE');
            expect(txs).to.have.length(0);
          }
        }
        expect(await balanceOf(a.id)).to.equal(expectedA);
        expect((await balanceOf(a.id)) + (await balanceOf(b.id))).to.equal(100_000);
      }
      await expectLedgersMatch(sys, a.id, { balance: expectedA });
      await expectLedgersMatch(sys, b.id, { balance: 100_000 - expectedA });
      expect(succeeded).to.be.above(60);
      const open = await sys.deps.db('operations').whereIn('card_id', [a.id, b.id]).whereNotIn('status', ['succeeded', 'failed']);
      expect(open).to.have.length(0);
      await sleep(1000); // statistics are flushed at the end of transactions, within a second
      expect(await deadlocks()).to.equal(deadlocksBefore);
    });
  }

  it('a replacement racing payments on the old card: each payment succeeds on the old card before it or fails CARD_NOT_ACTIVE; the balance moves exactly (3 rounds)', async () => {
    const outcomes = { before: 0, refused: 0 };
    for (let round = 0; round < 3; round++) {
      const owner = await createMember(sys);
      const card = await issueCard(sys, { type: 'prepaid', ownerMemberId: owner.id });
      await rechargeOk(sys, card.id, '1000.00');
      const qrs = [await issueQr(sys, card.id)];
      for (let i = 0; i < 9; i++) {
        const token = await memberToken(sys, (await createMember(sys)).id);
        await bind(sys, { key: token, cardNo: card.card_no });
        qrs.push(await issueQr(sys, card.id, token));
      }
      // Five payments (each member its own QR, MAX_BINDINGS_PER_CARD 10), the replacement, five more: all in flight at once.
      const pay = (qr: string) => charge(sys, merchantKey, { qr, amount: '10.00' }, { wait: false });
      const first = qrs.slice(0, 5).map(pay);
      const replacement = replaceCard(sys, card.id, 'lost', { wait: false });
      const rest = qrs.slice(5).map(pay);
      const payments = await Promise.all([...first, ...rest]);
      const replaced = await awaitOperation(sys, (await replacement).body.id);
      expect(replaced.status).to.equal('succeeded');
      const newCard = replaced.result!.new_card as { id: string; balance: string };
      const [debit] = await sys.deps.db('transactions').where({ operation_id: replaced.id, card_id: card.id });
      const replacedAt = (await sys.deps.db('balance_ledger').where({ transaction_id: debit.id }).first()).id;

      let paid = 0;
      for (const res of payments) {
        expect(res.status, res.text).to.equal(202);
        const op = await awaitOperation(sys, res.body.id, merchantKey);
        const row = await sys.deps.db('operations').where({ id: op.id }).first();
        if (op.status === 'succeeded') {
          paid++;
          outcomes.before++;
          const tx = await sys.deps.db('transactions').where({ operation_id: op.id }).first();
          expect(tx.card_id).to.equal(card.id);
          const ledger = await sys.deps.db('balance_ledger').where({ transaction_id: tx.id }).first();
          expect(Number(ledger.id)).to.be.below(Number(replacedAt), 'a payment succeeded after the replacement');
        } else {
          outcomes.refused++;
          // Accepted while the card was still open, it finds it closed; accepted after, its QR no longer exists.
          expect(op.error!.code).to.equal(row.card_id === card.id ? 'CARD_NOT_ACTIVE' : 'QR_EXPIRED_OR_INVALID');
          expect(await sys.deps.db('transactions').where({ operation_id: op.id })).to.have.length(0);
        }
      }
      const moved = 100_000 - paid * 1000;
      expect(newCard.balance).to.equal((moved / 100).toFixed(2));
      await expectLedgersMatch(sys, card.id, { balance: 0 });
      await expectLedgersMatch(sys, newCard.id, { balance: moved });
      expect(Number(debit.final_amount_minor)).to.equal(moved);
    }
    expect(outcomes.before, JSON.stringify(outcomes)).to.be.above(0);
    expect(outcomes.refused, JSON.stringify(outcomes)).to.be.above(0);
  });
});
