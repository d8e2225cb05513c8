import { expect } from 'chai';
import { runCli } from '../helpers/cli.js';
import { freshDatabase } from '../helpers/fresh-database.js';
import { awaitOperation, closeCard, transfer } from '../helpers/card-ops.js';
import { bind, createAppKey, createMember, createMerchant, issueCard, memberToken } from '../helpers/fixtures.js';
import { expectError, expectFailed, expectLedgersMatch, expectSucceeded, outboxEventsOf, getCard, newKey, rechargeOk } from '../helpers/money.js';
import { startSystem, type TestSystem } from '../helpers/system.js';

/** Transfers over HTTP (API.md "Operator money tools"): who may, what each leg writes, and the money coming back when the destination cannot take it. */
describe('e2e: transfers between cards', function () {
  this.timeout(60_000);
  let sys: TestSystem;
  let database: Awaited<ReturnType<typeof freshDatabase>>;
  let appKey: string;

  before(async () => {
    database = await freshDatabase('mps_transfers');
    // MAX_BALANCE 2,000.00: a destination's balance limit is easy to reach.
    sys = await startSystem({ MAX_BALANCE: 200_000 }, { databaseUrl: database.url });
    appKey = await createAppKey(sys);
  });
  after(async () => {
    await sys?.stop();
    await database?.drop();
  });

  async function ownerWithCards(balances: string[]) {
    const owner = await createMember(sys);
    const token = await memberToken(sys, owner.id);
    const cards = [];
    for (const balance of balances) {
      const card = await issueCard(sys, { type: 'prepaid', ownerMemberId: owner.id });
      if (balance !== '0.00') await rechargeOk(sys, card.id, balance);
      cards.push(card);
    }
    return { owner, token, cards };
  }

  const transactionsOf = (operationId: string) => sys.deps.db('transactions').where({ operation_id: operationId }).orderBy('created_at');
  const legsOf = (transferId: string) => sys.deps.db('operations').where({ parent_id: transferId }).orderBy('created_at');
  const eventsOf = (operationId: string) => outboxEventsOf(sys, operationId);

  it('the owner moves money between its two cards: the debit and the credit each once, on each card, and the operation ends succeeded with both numbers', async () => {
    const { token, cards } = await ownerWithCards(['100.00', '5.00']);
    const [a, b] = cards as [(typeof cards)[0], (typeof cards)[0]];
    const res = await transfer(sys, { from_card_id: a.id, to_card_id: b.id, amount: '30.50' }, { key: token });
    const op = expectSucceeded(res, 'transfer');
    expect(op.type).to.equal('transfer');
    expect(op.result).to.include({ amount: '30.50', from_card_id: a.id, to_card_id: b.id });
    expect(op.result!.debit_tx_no).to.match(/^TFD\d{21}$/);
    expect(op.result!.credit_tx_no).to.match(/^TFC\d{21}$/);

    expect(await getCard(sys, a.id)).to.include({ balance: '69.50' });
    expect(await getCard(sys, b.id)).to.include({ balance: '35.50' });
    await expectLedgersMatch(sys, a.id, { balance: 6950 });
    await expectLedgersMatch(sys, b.id, { balance: 3550 });

    const [debit] = await transactionsOf(op.id);
    expect(debit).to.include({ type: 'transfer_debit', card_id: a.id, tx_no: op.result!.debit_tx_no, final_amount_minor: 3050, merchant_id: null });
    const legs = await legsOf(op.id);
    expect(legs.map((l) => [l.type, l.status, l.card_id])).to.deep.equal([
      ['transfer_credit', 'succeeded', b.id],
      ['transfer_end', 'succeeded', a.id],
    ]);
    const [credit] = await transactionsOf(legs[0].id);
    expect(credit).to.include({ type: 'transfer_credit', card_id: b.id, tx_no: op.result!.credit_tx_no, final_amount_minor: 3050 });
    expect(await transactionsOf(legs[1].id)).to.have.length(0);
    const ledger = await sys.deps.db('balance_ledger').whereIn('transaction_id', [debit.id, credit.id]).orderBy('id');
    expect(ledger.map((l) => [l.card_id, Number(l.delta_minor), l.reason])).to.deep.equal([
      [a.id, -3050, 'transfer_debit'],
      [b.id, 3050, 'transfer_credit'],
    ]);

    // One outbox event for the transfer (legs tell the outbox nothing), one audit event of its end.
    expect((await eventsOf(op.id)).map((e) => e.type)).to.deep.equal(['transfer.succeeded']);
    for (const leg of legs) expect(await eventsOf(leg.id)).to.have.length(0);
    const audit = await sys.deps.db('audit_events').whereRaw(`context->>'operation_id' = ?`, [op.id]).orderBy('id');
    expect(audit.map((e) => e.action)).to.deep.equal(['transfer.debited', 'transfer.succeeded']);

    // The owner reads it; the card lists show both legs' transactions.
    const read = await sys.http.get(`/v1/operations/${op.id}`, { key: token });
    expect(read.status).to.equal(200);
    expect(read.body).to.deep.include({ status: 'succeeded', result: op.result });
    const listed = await sys.http.get(`/v1/cards/${b.id}/transactions?type=transfer_credit`, { key: token });
    expect(listed.status, listed.text).to.equal(200);
    expect(listed.body.data.map((t: { tx_no: string }) => t.tx_no)).to.deep.equal([op.result!.credit_tx_no]);
  });

  it('without Prefer: wait the transfer is 202 and open, then ends once; the same key and body name the same operation', async () => {
    const { cards } = await ownerWithCards(['50.00', '0.00']);
    const key = newKey('transfer');
    const first = await transfer(sys, { from_card_id: cards[0]!.id, to_card_id: cards[1]!.id, amount: '10.00' }, { idempotencyKey: key, wait: false });
    expect(first.status, first.text).to.equal(202);
    expect(['queued', 'processing', 'succeeded']).to.include(first.body.status);
    const done = await awaitOperation(sys, first.body.id);
    expect(done.status).to.equal('succeeded');
    const again = await transfer(sys, { from_card_id: cards[0]!.id, to_card_id: cards[1]!.id, amount: 10 }, { idempotencyKey: key });
    expect(again.body.id).to.equal(first.body.id);
    expect(again.body.result).to.deep.equal(done.result);
    const other = await transfer(sys, { from_card_id: cards[0]!.id, to_card_id: cards[1]!.id, amount: '11.00' }, { idempotencyKey: key });
    expectError(other, 409, 'IDEMPOTENCY_KEY_REUSED');
    expect(await getCard(sys, cards[0]!.id)).to.include({ balance: '40.00' });
  });

  it('a destination that cannot take the money (frozen, closed, balance limit) returns it to the source, and the transfer fails with that code', async () => {
    const { cards } = await ownerWithCards(['100.00', '10.00', '10.00', '1990.00']);
    const [source, frozen, closed, full] = cards as [(typeof cards)[0], (typeof cards)[0], (typeof cards)[0], (typeof cards)[0]];
    expect((await sys.http.post(`/v1/cards/${frozen.id}/freeze`, {}, { key: sys.adminKey })).status).to.equal(200);
    expectSucceeded(await closeCard(sys, closed.id), 'close');

    for (const [to, code] of [
      [frozen, 'CARD_NOT_ACTIVE'],
      [closed, 'CARD_NOT_ACTIVE'],
      [full, 'BALANCE_LIMIT_EXCEEDED'],
    ] as const) {
      const op = expectFailed(await transfer(sys, { from_card_id: source.id, to_card_id: to.id, amount: '20.00' }), code, `transfer to ${code}`);
      const [credit, end] = await legsOf(op.id);
      expect([credit.type, credit.status, credit.error_code]).to.deep.equal(['transfer_credit', 'failed', code]);
      expect([end.type, end.status]).to.deep.equal(['transfer_end', 'succeeded']);
      const [debit] = await transactionsOf(op.id);
      const [back] = await transactionsOf(end.id);
      expect(debit).to.include({ type: 'transfer_debit', card_id: source.id, final_amount_minor: 2000 });
      expect(back).to.include({ type: 'transfer_credit', card_id: source.id, final_amount_minor: 2000 });
      expect(await transactionsOf(credit.id)).to.have.length(0);
      expect((await eventsOf(op.id)).map((e) => [e.type, e.data.error.code, e.data.return_tx_no])).to.deep.equal([['transfer.failed', code, back.tx_no]]);
    }
    await expectLedgersMatch(sys, source.id, { balance: 10_000 });
    await expectLedgersMatch(sys, frozen.id, { balance: 1000 });
    await expectLedgersMatch(sys, closed.id, { balance: 0 });
    await expectLedgersMatch(sys, full.id, { balance: 199_000 });
    const reasons = await sys.deps.db('balance_ledger').where({ card_id: source.id }).orderBy('id').pluck('reason');
    expect(reasons).to.deep.equal(['recharge', 'transfer_debit', 'transfer_return', 'transfer_debit', 'transfer_return', 'transfer_debit', 'transfer_return']);
  });

  it('a source that cannot give it fails at once (insufficient balance, closed), and no leg is created', async () => {
    const { cards } = await ownerWithCards(['5.00', '0.00', '1.00']);
    const short = expectFailed(await transfer(sys, { from_card_id: cards[0]!.id, to_card_id: cards[1]!.id, amount: '5.01' }), 'INSUFFICIENT_BALANCE');
    expect(await legsOf(short.id)).to.have.length(0);
    expect(await transactionsOf(short.id)).to.have.length(0);
    expect((await eventsOf(short.id)).map((e) => e.type)).to.deep.equal(['transfer.failed']);
    expectSucceeded(await closeCard(sys, cards[2]!.id), 'close');
    const fromClosed = expectFailed(await transfer(sys, { from_card_id: cards[2]!.id, to_card_id: cards[1]!.id, amount: '1.00' }), 'CARD_NOT_ACTIVE');
    expect(await legsOf(fromClosed.id)).to.have.length(0);
    await expectLedgersMatch(sys, cards[0]!.id, { balance: 500 });
  });

  it('who may: the owner of both cards, an app for one owner, an admin for any two; others 403 or 404', async () => {
    const { owner, token, cards } = await ownerWithCards(['100.00', '0.00']);
    const stranger = await ownerWithCards(['100.00']);
    const [mine, mine2] = cards as [(typeof cards)[0], (typeof cards)[0]];
    const theirs = stranger.cards[0]!;

    // Another member's card is 404 (as if it did not exist), either side.
    expectError(await transfer(sys, { from_card_id: theirs.id, to_card_id: mine.id, amount: 1 }, { key: token }), 404, 'NOT_FOUND');
    expectError(await transfer(sys, { from_card_id: mine.id, to_card_id: theirs.id, amount: 1 }, { key: token }), 404, 'NOT_FOUND');
    // A member bound to a family card (not its owner) cannot move its money.
    const relative = await createMember(sys);
    const relativeToken = await memberToken(sys, relative.id);
    await bind(sys, { key: relativeToken, cardNo: mine.card_no });
    const ownCard = await issueCard(sys, { type: 'prepaid', ownerMemberId: relative.id });
    expectError(await transfer(sys, { from_card_id: mine.id, to_card_id: ownCard.id, amount: 1 }, { key: relativeToken }), 403, 'FORBIDDEN');
    // An app moves money only between cards of one owner; an admin between any two.
    expectError(await transfer(sys, { from_card_id: mine.id, to_card_id: theirs.id, amount: 1 }, { key: appKey }), 403, 'FORBIDDEN');
    expectSucceeded(await transfer(sys, { from_card_id: mine.id, to_card_id: mine2.id, amount: '2.00' }, { key: appKey }), 'app transfer');
    expectSucceeded(await transfer(sys, { from_card_id: theirs.id, to_card_id: mine.id, amount: '3.00' }), 'admin transfer');
    const { key: merchantKey } = await createMerchant(sys);
    expectError(await transfer(sys, { from_card_id: mine.id, to_card_id: mine2.id, amount: 1 }, { key: merchantKey }), 403, 'FORBIDDEN');
    // Malformed: one card twice, an unknown field, a card that holds no value.
    expectError(await transfer(sys, { from_card_id: mine.id, to_card_id: mine.id, amount: 1 }, { key: token }), 400, 'VALIDATION_ERROR');
    const extra = await sys.http.post('/v1/transfers', { from_card_id: mine.id, to_card_id: mine2.id, amount: 1, fee: 0 }, { key: token, headers: { 'idempotency-key': newKey() } });
    expectError(extra, 400, 'VALIDATION_ERROR');
    expectError(await transfer(sys, { from_card_id: mine.id, to_card_id: owner.cards[0]!.id, amount: 1 }, { key: token }), 422, 'UNPROCESSABLE');
    expectError(await transfer(sys, { from_card_id: mine.id, to_card_id: mine2.id, amount: '0.001' }, { key: token }), 400, 'AMOUNT_INVALID');

    expect(await getCard(sys, mine.id)).to.include({ balance: '101.00' });
    expect(await getCard(sys, mine2.id)).to.include({ balance: '2.00' });
    expect(await getCard(sys, theirs.id)).to.include({ balance: '97.00' });
  });

  it('verify-ledger proves balance = Σ balance_ledger and points = Σ point_ledger for every card of this database, transfer legs included', async () => {
    const ledger = await runCli(['verify-ledger'], { DATABASE_URL: database.url });
    expect(ledger.code, ledger.out).to.equal(0);
    expect(ledger.out).to.match(/\d+ cards checked, 0 mismatched\./);
    expect(Number(/(\d+) cards checked/.exec(ledger.out)![1])).to.be.at.least(10);
  });
});
