import { startSystem } from '../helpers/system.js';
import { createMember, createMerchant } from '../helpers/fixtures.js';
import { charge, issueQr, sleep } from '../helpers/money.js';
describe('dbg', function () {
  this.timeout(30000);
  it('x', async () => {
    const sys = await startSystem({ CARD_PARTITIONS: 4 });
    const { key } = await createMerchant(sys);
    const m = await createMember(sys); const m2 = await createMember(sys);
    const qr = await issueQr(sys, m.cards[0]!.id); const qr2 = await issueQr(sys, m2.cards[0]!.id);
    console.log('setup done');
    const lock = await sys.deps.db.transaction();
    await lock('member_cards').where({ id: m.cards[0]!.id }).forUpdate().first('id');
    console.log('locked');
    const r = await charge(sys, key, { qr, amount: '10.00', payment_method: 'cash' }, { wait: false });
    console.log('charged', r.status);
    const r2 = await charge(sys, key, { qr: qr2, amount: '10.00', payment_method: 'cash' }, { wait: false });
    console.log('charged2', r2.status);
    for (let i = 0; i < 20; i++) { console.log((await sys.deps.db('operations').whereIn('id', [r.body.id, r2.body.id]).select('status')).map((x: any) => x.status)); await sleep(200); }
    await lock.commit();
    await sys.stop();
  });
});
