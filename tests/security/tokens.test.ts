import { expect } from 'chai';
import { createAppKey, createMerchant, memberToken, memberWithToken } from '../helpers/fixtures.js';
import { startSystem, type TestSystem } from '../helpers/system.js';
import { expectCode } from './helpers.js';

/**
 * Finding: a leaked member token could not be revoked before its TTL ran out. API.md "Security
 * rules": `DELETE /v1/members/:id/tokens` (admin, app) revokes every token of the member (204).
 */

describe('security: revoking member tokens', function () {
  this.timeout(30_000);
  let sys: TestSystem;
  let appKey: string;

  before(async () => {
    sys = await startSystem({ CARD_PARTITIONS: 2 }, { workers: false });
    appKey = await createAppKey(sys);
  });
  after(async () => {
    await sys?.stop();
  });

  const readSelf = (memberId: string, token: string) => sys.http.get(`/v1/members/${memberId}`, { key: token });

  for (const who of ['admin', 'app'] as const) {
    it(`${who}: DELETE /v1/members/:id/tokens → 204; every token of that member is then 401, another member's token keeps working`, async () => {
      const key = who === 'admin' ? sys.adminKey : appKey;
      const x = await memberWithToken(sys);
      const second = await memberToken(sys, x.member.id, appKey);
      const y = await memberWithToken(sys);
      for (const t of [x.token, second]) expect((await readSelf(x.member.id, t)).status, 'before revocation').to.equal(200);

      const res = await sys.http.delete(`/v1/members/${x.member.id}/tokens`, { key });
      expect(res.status, res.text).to.equal(204);

      for (const t of [x.token, second]) {
        expectCode(await readSelf(x.member.id, t), 401, 'UNAUTHENTICATED', 'revoked token on GET member');
        expectCode(await sys.http.get(`/v1/cards/${x.standardCard.id}`, { key: t }), 401, 'UNAUTHENTICATED', 'revoked token on GET card');
      }
      expect((await readSelf(y.member.id, y.token)).status, "another member's token").to.equal(200);
    });
  }

  it('a merchant key → 403 FORBIDDEN and the tokens keep working', async () => {
    const { key } = await createMerchant(sys);
    const x = await memberWithToken(sys);
    expectCode(await sys.http.delete(`/v1/members/${x.member.id}/tokens`, { key }), 403, 'FORBIDDEN', 'merchant key');
    expect((await readSelf(x.member.id, x.token)).status).to.equal(200);
  });

  it("a member token cannot revoke (not a route for members): 403, and it still works", async () => {
    const x = await memberWithToken(sys);
    expectCode(await sys.http.delete(`/v1/members/${x.member.id}/tokens`, { key: x.token }), 403, 'FORBIDDEN', 'member token');
    expect((await readSelf(x.member.id, x.token)).status).to.equal(200);
  });

  it('a token issued after the revocation works', async () => {
    const x = await memberWithToken(sys);
    const res = await sys.http.delete(`/v1/members/${x.member.id}/tokens`, { key: sys.adminKey });
    expect(res.status, res.text).to.equal(204);
    expectCode(await readSelf(x.member.id, x.token), 401, 'UNAUTHENTICATED', 'old token');
    const fresh = await memberToken(sys, x.member.id);
    expect((await readSelf(x.member.id, fresh)).status).to.equal(200);
  });
});
