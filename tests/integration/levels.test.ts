import { expect } from 'chai';
import { createAppKey, createMember, createMerchant, issueCard, lastAudit, memberWithToken } from '../helpers/fixtures.js';
import { expectError, itRefusesMalformedRequests } from '../helpers/request-checks.js';
import { startSystem, type TestSystem } from '../helpers/system.js';

/** The seeded table of DESIGN.md, as GET /v1/levels shows it. */
const DEFAULT_LEVELS = [
  { level: 0, name: 'regular', local_name: '普通會員', min_points: 0, discount_rate: '1.000' },
  { level: 1, name: 'silver', local_name: '銀卡會員', min_points: 1000, discount_rate: '0.950' },
  { level: 2, name: 'gold', local_name: '金卡會員', min_points: 5000, discount_rate: '0.900' },
  { level: 3, name: 'diamond', local_name: '鑽石會員', min_points: 10000, discount_rate: '0.850' },
];

describe('levels API', () => {
  let sys: TestSystem;
  let appKey: string;
  before(async () => {
    sys = await startSystem({}, { workers: false });
    appKey = await createAppKey(sys);
  });
  // The table is shared by every test file of the run: put the seeded one back whatever happened.
  afterEach(async () => {
    const res = await sys.http.put('/v1/levels', { levels: DEFAULT_LEVELS }, { key: sys.adminKey });
    expect(res.status, JSON.stringify(res.body)).to.equal(200);
  });
  after(async () => {
    await sys.stop();
  });

  const table = async () => (await sys.deps.db('membership_levels').orderBy('level').select('level', 'name', 'local_name', 'min_points', 'discount_rate')).map((r) => ({ ...r }));

  it('GET lists the membership levels with rates as 3-decimal strings', async () => {
    const res = await sys.http.get('/v1/levels', { key: sys.adminKey });
    expect(res.status).to.equal(200);
    expect(res.body).to.deep.equal({ data: DEFAULT_LEVELS });
  });

  it('PUT replaces the table in one go, moves stored card levels to the new thresholds, and writes an audit event', async () => {
    const owner = await createMember(sys);
    const card = await issueCard(sys, { type: 'prepaid', ownerMemberId: owner.id });
    await sys.http.post(`/v1/cards/${card.id}/points-adjustments`, { delta: 1500, reason: 'seed' }, { key: sys.adminKey });
    const levels = [
      { level: 0, name: 'basic', local_name: '基本', min_points: 0, discount_rate: 1 },
      { level: 1, name: 'plus', local_name: '進階', min_points: 2000, discount_rate: '0.97' },
      { level: 2, name: 'max', local_name: '尊榮', min_points: 3000, discount_rate: '0.925' },
    ];
    const res = await sys.http.put('/v1/levels', { levels: [levels[2], levels[0], levels[1]] }, { key: sys.adminKey });
    expect(res.status).to.equal(200);
    const expected = [
      { level: 0, name: 'basic', local_name: '基本', min_points: 0, discount_rate: '1.000' },
      { level: 1, name: 'plus', local_name: '進階', min_points: 2000, discount_rate: '0.970' },
      { level: 2, name: 'max', local_name: '尊榮', min_points: 3000, discount_rate: '0.925' },
    ];
    expect(res.body).to.deep.equal({ data: expected });
    expect((await sys.http.get('/v1/levels', { key: sys.adminKey })).body.data).to.deep.equal(expected);
    // 1500 points was silver (1) under the old table and is level 0 under the new one.
    const read = await sys.http.get(`/v1/cards/${card.id}`, { key: sys.adminKey });
    expect(read.body).to.include({ points: 1500, level: 0, discount_rate: '1.000' });
    const audit = await sys.deps.db('audit_events').where({ action: 'levels.replace' }).orderBy('id', 'desc').first();
    expect(audit).to.include({ object_type: 'membership_levels', request_id: res.headers.get('x-request-id') });
    expect(audit.context.cards_moved).to.be.at.least(1);
    expect(await lastAudit(sys, 'membership_levels', 'all')).to.deep.equal(audit);
  });

  const one = (over: Record<string, unknown>) => ({ level: 0, name: 'regular', local_name: '普通', min_points: 0, discount_rate: '1.000', ...over });
  const invalid: [string, unknown, string][] = [
    ['no levels', [], 'levels'],
    ['11 levels', Array.from({ length: 11 }, (_, i) => one({ level: i, min_points: i * 100 })), 'levels'],
    ['level 0 above 0 points', [one({ min_points: 100 })], '0 points'],
    ['thresholds that do not rise', [one({}), one({ level: 1, min_points: 500 }), one({ level: 2, min_points: 500 })], 'rise'],
    ['thresholds that fall', [one({}), one({ level: 1, min_points: 500 }), one({ level: 2, min_points: 400 })], 'rise'],
    ['a gap in the numbering', [one({}), one({ level: 2, min_points: 500 })], 'numbered'],
    ['a level twice', [one({}), one({ level: 0, min_points: 500 })], 'numbered'],
    ['a missing level 0', [one({ level: 1 })], 'numbered'],
    ['a rate over 1', [one({ discount_rate: '1.05' })], 'discount_rate'],
    ['a rate with 4 decimals', [one({ discount_rate: '0.9505' })], 'discount_rate'],
    ['a negative rate', [one({ discount_rate: -0.1 })], 'discount_rate'],
    ['negative points', [one({}), one({ level: 1, min_points: -5 })], 'min_points'],
    ['fractional points', [one({}), one({ level: 1, min_points: 99.5 })], 'min_points'],
    ['a missing name', [{ level: 0, local_name: '普通', min_points: 0, discount_rate: '1.000' }], 'name'],
    ['an unknown field in a level', [one({ colour: 'gold' })], 'levels.0.colour'],
    ['levels that is not an array', { 0: one({}) }, 'levels'],
  ];
  for (const [what, levels, text] of invalid) {
    it(`PUT refuses ${what} with 400 VALIDATION_ERROR and leaves the table as it was`, async () => {
      const before = await table();
      expectError(await sys.http.put('/v1/levels', { levels }, { key: sys.adminKey }), 400, 'VALIDATION_ERROR', text);
      expect(await table()).to.deep.equal(before);
    });
  }

  it('PUT refuses unknown top-level fields, naming them', async () => {
    const before = await table();
    expectError(await sys.http.put('/v1/levels', { levels: DEFAULT_LEVELS, replace: true }, { key: sys.adminKey }), 400, 'VALIDATION_ERROR', 'replace');
    expect(await table()).to.deep.equal(before);
  });

  it('is for admins only: app, merchant and member keys get 403 on GET and PUT, and the table stays', async () => {
    const before = await table();
    const keys = [appKey, (await createMerchant(sys)).key, (await memberWithToken(sys)).token];
    for (const key of keys) {
      expectError(await sys.http.get('/v1/levels', { key }), 403, 'FORBIDDEN');
      expectError(await sys.http.put('/v1/levels', { levels: [one({ discount_rate: '0.500' })] }, { key }), 403, 'FORBIDDEN');
    }
    expect(await table()).to.deep.equal(before);
  });

  itRefusesMalformedRequests({ sys: () => sys, method: 'PUT', path: () => '/v1/levels', key: () => sys.adminKey, state: table });
});
