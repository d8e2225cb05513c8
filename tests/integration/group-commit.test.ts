import { randomBytes } from 'node:crypto';
import { expect } from 'chai';
import { insertOperation, insertOperations, type NewOperation, type OperationRecord } from '../../db/queries/operations.js';
import { isUniqueViolation } from '../../db/pg-errors.js';
import { partitionOf } from '../../domain/partition.js';
import { sha256 } from '../../domain/tokens.js';
import { enqueueOperation } from '../../operations/enqueue.js';
import { createMember, createMerchant, issueCard, type CardJson } from '../helpers/fixtures.js';
import { charge, expectLedgersMatch, expectSucceeded, issueQr, newKey, pollOperation, recharge, type OperationJson } from '../helpers/money.js';
import { hex, newOperationId } from '../helpers/sql-rows.js';
import { startSystem, type TestSystem } from '../helpers/system.js';

/**
 * Group commit of acceptances (db/batcher.ts, insertOperations) and of enqueues (operations/enqueue.ts)
 * against the run's real Postgres and Redis: what the batched statement writes must be exactly what
 * the single-row insert writes, and one bad row must fail only its own call.
 */

/** Rows of one statement share its transaction's now(): fewer distinct created_at than rows means rows were grouped. */
const distinctCreatedAt = (rows: { created_at: Date }[]) => new Set(rows.map((r) => r.created_at.toISOString())).size;

/** Runs `fn` over `items`, `width` at a time (fixtures over HTTP without a burst of hundreds of requests). */
async function inChunks<T, R>(items: T[], width: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = [];
  for (let i = 0; i < items.length; i += width) out.push(...(await Promise.all(items.slice(i, i + width).map(fn))));
  return out;
}

describe('group commit: concurrent payments over HTTP', function () {
  this.timeout(120_000);
  let sys: TestSystem;

  before(async () => {
    sys = await startSystem();
  });
  after(async () => {
    await sys.stop();
  });

  it('30 concurrent payments on 30 cards are all accepted on their own card and partition, succeed, and leave the right balances', async () => {
    const merchant = await createMerchant(sys);
    const owner = await createMember(sys);
    const cards: CardJson[] = await inChunks(Array.from({ length: 30 }), 10, () => issueCard(sys, { type: 'prepaid', ownerMemberId: owner.id }));
    await inChunks(cards, 10, async (card) => expectSucceeded(await recharge(sys, card.id, { amount: '100.00' }), `recharge ${card.id}`));
    const qrs = await inChunks(cards, 10, (card) => issueQr(sys, card.id));

    const responses = await Promise.all(cards.map((_, i) => charge(sys, merchant.key, { qr: qrs[i]!, amount: '12.34', external_order_id: `ORDER-${i}` }, { wait: 20 })));
    const ops: OperationJson[] = [];
    for (const [i, res] of responses.entries()) {
      expect([200, 202], `payment ${i}: ${res.text}`).to.include(res.status);
      ops.push(res.body.status === 'succeeded' ? res.body : await pollOperation(sys, res.body.id, merchant.key, 30_000));
    }
    expect(new Set(ops.map((op) => op.id)).size, 'one operation per request').to.equal(30);
    for (const [i, op] of ops.entries()) {
      expect(op.status, `payment ${i}: ${JSON.stringify(op)}`).to.equal('succeeded');
      expect(op.result).to.include({ raw_amount: '12.34', final_amount: '12.34', discount_rate: '1.000', points_earned: 12 });
    }

    // Each row took the card of its own QR (not a neighbour's in the same statement) and that card's partition.
    const rows = await sys.deps.db<OperationRecord>('operations').whereIn('id', ops.map((op) => op.id));
    const byId = new Map(rows.map((r) => [r.id, r]));
    for (const [i, op] of ops.entries()) {
      const row = byId.get(op.id)!;
      expect(row, op.id).to.not.equal(undefined);
      expect(row).to.include({ card_id: cards[i]!.id, member_id: owner.id, qr_token_hash: sha256(qrs[i]!), merchant_id: merchant.merchant.id, partition: partitionOf(cards[i]!.id, sys.config.CARD_PARTITIONS) });
      expect(row.params).to.deep.equal({ external_order_id: `ORDER-${i}` });
    }
    await inChunks(cards, 10, (card) => expectLedgersMatch(sys, card.id, { balance: 10_000 - 1_234, points: 12 }));

    // Informational: over HTTP the requests reach the insert in different turns, so how many share a statement varies.
    console.log(`      [group commit] 30 concurrent payments were accepted in ${distinctCreatedAt(rows)} statement(s)`);
  });
});

describe('group commit: the batched insert and enqueue (no workers)', function () {
  this.timeout(60_000);
  const PARTITIONS = 16;
  let sys: TestSystem;
  let merchantId: string;
  let merchantKeyId: string;
  let principal: string;
  /** A prepaid card with a live QR (its hash in card_qr_state), and a second card without. */
  let qrCard: CardJson;
  let qrHash: string;
  let ownerId: string;
  let otherCard: CardJson;
  let otherOwnerId: string;

  before(async () => {
    sys = await startSystem({}, { workers: false });
    const m = await createMerchant(sys);
    merchantId = m.merchant.id;
    merchantKeyId = m.keyId;
    principal = `merchant:${merchantId}`;
    ownerId = (await createMember(sys)).id;
    qrCard = await issueCard(sys, { type: 'prepaid', ownerMemberId: ownerId });
    qrHash = sha256(await issueQr(sys, qrCard.id));
    otherOwnerId = (await createMember(sys)).id;
    otherCard = await issueCard(sys, { type: 'prepaid', ownerMemberId: otherOwnerId });
  });
  afterEach(async () => {
    // Rows of this merchant stay queued (no workers): gone, so that no later system's worker or reconciler takes them.
    await sys.deps.db('operations').where({ principal }).delete();
  });
  after(async () => {
    await sys.stop();
  });

  /** A payment draft as acceptance builds it (services/operations.ts), of this merchant, with a fresh id and key. */
  const draft = (over: Partial<NewOperation> = {}): NewOperation => ({
    id: newOperationId(),
    type: 'payment',
    principal,
    idempotency_key: newKey('gc'),
    request_hash: hex(32),
    api_key_id: merchantKeyId,
    actor_role: 'merchant',
    merchant_id: merchantId,
    member_id: null,
    card_id: null,
    partition: 0,
    qr_token_hash: null,
    amount_minor: 1234,
    payment_method: null,
    original_tx_no: null,
    params: { external_order_id: 'ORDER-1', tag: { lane: 3, nested: { ok: true } } },
    request_id: `req-${hex(4)}`,
    ip: '127.0.0.1',
    ...over,
  });
  /** An operation id whose own partition differs from `than` (so a test tells which one a row took). */
  const idOffPartition = (than: number): string => {
    for (;;) {
      const id = newOperationId();
      if (partitionOf(id, PARTITIONS) !== than) return id;
    }
  };
  const rowOf = (id: string) => sys.deps.db<OperationRecord>('operations').where({ id }).first();
  /** A row without what differs between two inserts of the same draft (id, key, time). */
  const comparable = ({ id: _id, idempotency_key: _key, created_at: _at, ...rest }: OperationRecord) => rest;
  /** insertOne: a knex transaction bypasses the batcher. */
  const insertAlone = (op: NewOperation, cardOfQr?: { hash: string; partitions: number }) => sys.deps.db.transaction((trx) => insertOperation(trx, op, cardOfQr));

  it('20 concurrent insertOperation calls of one turn are one statement (one created_at), each answered its own row', async () => {
    const ops = Array.from({ length: 20 }, (_, i) => draft({ amount_minor: 100 + i, partition: i % PARTITIONS }));
    const answers = await Promise.all(ops.map((op) => insertOperation(sys.deps.db, op)));
    expect(answers.map((a) => a?.id)).to.deep.equal(ops.map((op) => op.id));
    expect(answers.map((a) => Number(a!.amount_minor))).to.deep.equal(ops.map((op) => op.amount_minor));
    const rows = await sys.deps.db<OperationRecord>('operations').whereIn('id', ops.map((op) => op.id));
    expect(rows).to.have.length(20);
    expect(distinctCreatedAt(rows), 'rows of one statement share its now()').to.be.below(rows.length);
    expect(distinctCreatedAt(rows), 'all 20 were submitted in one turn: one batch').to.equal(1);
  });

  it('insertOperations: QR rows take the card, member and partition of their QR (or none and their own id’s), other rows keep theirs, as insertOne does', async () => {
    const cardPartition = partitionOf(qrCard.id, PARTITIONS);
    // Partitions given that are not the ones the rows must end with: the statement has to compute them.
    const knownQr = draft({ id: idOffPartition(cardPartition), qr_token_hash: qrHash, partition: (cardPartition + 1) % PARTITIONS });
    const unknownHash = sha256(`mpsq_${hex(16)}`);
    const unknownQr = draft({ id: idOffPartition(cardPartition), qr_token_hash: unknownHash, partition: cardPartition });
    const plain = draft({
      type: 'recharge',
      card_id: otherCard.id,
      member_id: otherOwnerId,
      partition: 5,
      amount_minor: 50_000,
      payment_method: 'credit_card',
      payment_reference: `psp-${hex(8)}`,
      status: 'requires_approval',
      params: { reason: 'till' },
    });
    const qrOf = { hash: qrHash, partitions: PARTITIONS };
    const answers = await insertOperations(sys.deps.db, [
      { op: knownQr, cardOfQr: qrOf },
      { op: unknownQr, cardOfQr: { hash: unknownHash, partitions: PARTITIONS } },
      { op: plain },
    ]);
    expect(answers.map((a) => a?.id)).to.deep.equal([knownQr.id, unknownQr.id, plain.id]);
    const [known, unknown, kept] = [answers[0]!, answers[1]!, answers[2]!];

    expect(known).to.include({ card_id: qrCard.id, member_id: ownerId, partition: cardPartition, qr_token_hash: qrHash, status: 'queued' });
    expect(unknown).to.include({ card_id: null, member_id: null, partition: partitionOf(unknownQr.id, PARTITIONS), qr_token_hash: unknownHash, status: 'queued' });
    expect(kept).to.include({ card_id: otherCard.id, member_id: otherOwnerId, partition: 5, status: 'requires_approval', payment_method: 'credit_card', payment_reference: plain.payment_reference });
    // Each answer is the row as stored.
    for (const a of answers) expect(await rowOf(a!.id)).to.deep.equal(a);

    // The same drafts through insertOne (other id and key) give the same row, column for column.
    const again = (op: NewOperation) => ({ ...op, id: newOperationId(), idempotency_key: newKey('gc-one'), ...(op.payment_reference ? { payment_reference: `psp-${hex(8)}` } : {}) });
    const knownAlone = (await insertAlone(again(knownQr), qrOf))!;
    const unknownAloneOp = again(unknownQr);
    const unknownAlone = (await insertAlone(unknownAloneOp, { hash: unknownHash, partitions: PARTITIONS }))!;
    const plainAloneOp = again(plain);
    const plainAlone = (await insertAlone(plainAloneOp))!;
    expect(comparable(known)).to.deep.equal(comparable(knownAlone));
    // The partition of a row without a card is its own id's: the same rule, another id.
    expect(unknownAlone.partition).to.equal(partitionOf(unknownAloneOp.id, PARTITIONS));
    expect({ ...comparable(unknown), partition: 'own id' }).to.deep.equal({ ...comparable(unknownAlone), partition: 'own id' });
    expect({ ...comparable(kept), payment_reference: 'ref' }).to.deep.equal({ ...comparable(plainAlone), payment_reference: 'ref' });
    expect(plainAlone.payment_reference).to.equal(plainAloneOp.payment_reference);
  });

  it('insertOperations: a row whose (principal, key) exists answers undefined and leaves the earlier row as it was; the same key twice in a call inserts once', async () => {
    const earlier = (await insertAlone(draft({ card_id: otherCard.id, member_id: otherOwnerId, partition: 3, amount_minor: 777 })))!;
    const before = await rowOf(earlier.id);
    const sameKey = draft({ idempotency_key: earlier.idempotency_key, card_id: qrCard.id, member_id: ownerId, partition: 9, amount_minor: 999 });
    const sharedKey = newKey('gc-twice');
    const first = draft({ idempotency_key: sharedKey, amount_minor: 111 });
    const second = draft({ idempotency_key: sharedKey, amount_minor: 222, qr_token_hash: qrHash });
    const fresh = draft({ amount_minor: 333 });
    const answers = await insertOperations(sys.deps.db, [{ op: sameKey }, { op: first }, { op: second, cardOfQr: { hash: qrHash, partitions: PARTITIONS } }, { op: fresh }]);

    expect(answers[0], 'the key existed').to.equal(undefined);
    expect(await rowOf(sameKey.id)).to.equal(undefined);
    expect(await rowOf(earlier.id), 'the earlier row is unchanged').to.deep.equal(before);

    const twice = await sys.deps.db<OperationRecord>('operations').where({ principal, idempotency_key: sharedKey });
    expect(twice, 'one row for the key given twice').to.have.length(1);
    const answeredTwice = [answers[1], answers[2]].filter((a) => a !== undefined);
    expect(answeredTwice, 'exactly one of the two is answered a row').to.have.length(1);
    expect(answeredTwice[0]!.id).to.equal(twice[0]!.id);
    expect(answeredTwice[0]).to.deep.equal(twice[0]);

    expect(answers[3]?.id).to.equal(fresh.id);
    expect(Number(answers[3]!.amount_minor)).to.equal(333);
  });

  it('a batch with a row that reuses a (payment_method, payment_reference) rejects only that call, with a unique violation of operations_payment_reference', async () => {
    const reference = `psp-${hex(8)}`;
    const recharge = (over: Partial<NewOperation> = {}) =>
      draft({ type: 'recharge', card_id: otherCard.id, member_id: otherOwnerId, partition: partitionOf(otherCard.id, PARTITIONS), amount_minor: 10_000, payment_method: 'credit_card', payment_reference: reference, params: {}, ...over });
    // Queued, so held by the index (operations_payment_reference leaves out failed and rejected operations only).
    const existing = (await insertAlone(recharge()))!;
    expect(existing.status).to.equal('queued');
    const existingBefore = await rowOf(existing.id);

    // The statement of such a batch fails as a whole: why the batcher runs its rows alone then.
    let whole: unknown;
    await insertOperations(sys.deps.db, [{ op: draft() }, { op: recharge() }]).catch((err: unknown) => {
      whole = err;
    });
    expect(isUniqueViolation(whole, 'operations_payment_reference'), String(whole)).to.equal(true);

    const reused = recharge();
    const others = [draft(), recharge({ payment_method: 'line_pay' }), draft({ qr_token_hash: qrHash }), recharge({ payment_reference: `psp-${hex(8)}` })];
    const calls = [others[0]!, others[1]!, reused, others[2]!, others[3]!].map((op) =>
      insertOperation(sys.deps.db, op, op.qr_token_hash ? { hash: qrHash, partitions: PARTITIONS } : undefined).then(
        (row) => ({ ok: true as const, row }),
        (err: unknown) => ({ ok: false as const, err }),
      ),
    );
    const settled = await Promise.all(calls);
    const failed = settled[2]!;
    expect(failed.ok, 'the reusing call rejects').to.equal(false);
    expect(isUniqueViolation(!failed.ok && failed.err, 'operations_payment_reference'), String(!failed.ok && failed.err)).to.equal(true);
    expect(await rowOf(reused.id)).to.equal(undefined);

    for (const [i, s] of [settled[0]!, settled[1]!, settled[3]!, settled[4]!].entries()) {
      expect(s.ok, `call ${i}: ${!s.ok && String(s.err)}`).to.equal(true);
      const row = s.ok ? s.row : undefined;
      expect(row?.id).to.equal(others[i]!.id);
      expect(await rowOf(others[i]!.id)).to.deep.equal(row);
    }
    // The QR row, run alone after the failed batch, still took its QR's card.
    expect((settled[3] as { row: OperationRecord }).row).to.include({ card_id: qrCard.id, member_id: ownerId, partition: partitionOf(qrCard.id, PARTITIONS) });
    expect(await rowOf(existing.id), 'the earlier recharge is unchanged').to.deep.equal(existingBefore);
  });

  it('concurrent enqueueOperation calls leave one job per operation (id = operation id) on its partition queue, all in one pipeline; re-enqueueing adds none', async () => {
    const partitions = [0, 0, 0, 3, 3, 7, 7, 7, 7, 15, 15, 1];
    const ops = partitions.map((partition, i) => ({ id: newOperationId(), type: i % 2 ? 'payment' : 'recharge', partition }));
    const queues = sys.deps.queues.partitions;
    const used = [...new Set(partitions)];

    const redis = sys.deps.redis as unknown as { pipeline: (...args: unknown[]) => unknown };
    const { pipeline } = redis;
    let pipelines = 0;
    redis.pipeline = (...args: unknown[]) => (pipelines++, pipeline.apply(redis, args));
    const singleAdds: number[] = [];
    const restore: (() => void)[] = [() => (redis.pipeline = pipeline)];
    for (const [p, q] of queues.entries()) {
      const { addBulk, add } = q;
      q.addBulk = ((jobs: Parameters<typeof addBulk>[0]) => (singleAdds.push(p), addBulk.call(q, jobs))) as typeof addBulk;
      q.add = ((...args: Parameters<typeof add>) => (singleAdds.push(p), add.apply(q, args))) as typeof add;
      restore.push(() => {
        q.addBulk = addBulk;
        q.add = add;
      });
    }
    try {
      await Promise.all(ops.map((op) => enqueueOperation(sys.deps, op)));
      expect(pipelines, 'one pipeline for the jobs of every partition').to.equal(1);
      expect(singleAdds, 'no add or addBulk of a queue').to.deep.equal([]);
    } finally {
      for (const r of restore) r();
    }

    for (const op of ops) {
      const job = await queues[op.partition]!.getJob(op.id);
      expect(job, `job of ${op.id} on partition ${op.partition}`).to.not.equal(undefined);
      expect(job!.id).to.equal(op.id);
      expect(job!.name).to.equal(op.type);
      expect(job!.data).to.deep.equal({ operationId: op.id });
      expect(job!.opts).to.include({ attempts: sys.deps.config.JOB_ATTEMPTS, removeOnComplete: true });
      const elsewhere = (op.partition + 1) % queues.length;
      expect(await queues[elsewhere]!.getJob(op.id), `no job of ${op.id} on partition ${elsewhere}`).to.equal(undefined);
    }
    const counts = async () => Object.fromEntries(await Promise.all(used.map(async (p) => [p, await queues[p]!.count()])));
    const expected = Object.fromEntries(used.map((p) => [p, partitions.filter((x) => x === p).length]));
    expect(await counts()).to.deep.equal(expected);

    // Again, concurrently and alone: the job id is the operation id, so no second job.
    await Promise.all(ops.map((op) => enqueueOperation(sys.deps, op)));
    await enqueueOperation(sys.deps, ops[0]!);
    expect(await counts(), 'no second job').to.deep.equal(expected);
    for (const op of ops) expect((await queues[op.partition]!.getJob(op.id))?.id).to.equal(op.id);
    await Promise.all(used.map((p) => queues[p]!.obliterate({ force: true })));
  });

  it('a transaction-bound insertOperation writes in its transaction (not through the pool): invisible outside it, gone with its rollback', async () => {
    const op = draft();
    let seenOutside: OperationRecord | undefined = {} as OperationRecord;
    await sys.deps.db.transaction(async (trx) => {
      const row = await insertOperation(trx, op);
      expect(row?.id).to.equal(op.id);
      seenOutside = await rowOf(op.id);
      // Rolled back: nothing stays.
      throw new Error(`rollback ${randomBytes(2).toString('hex')}`);
    }).catch((err: unknown) => {
      if (!(err as Error).message.startsWith('rollback')) throw err;
    });
    expect(seenOutside, 'not visible outside the transaction before commit').to.equal(undefined);
    expect(await rowOf(op.id), 'rolled back with its transaction').to.equal(undefined);
  });
});
