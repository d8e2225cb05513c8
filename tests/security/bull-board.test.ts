import { expect } from 'chai';
import type { Queue } from 'bullmq';
import { startSystem, type TestSystem } from '../helpers/system.js';
import { basic } from './helpers.js';

/**
 * Finding: Bull Board let anyone holding (or riding, via a cross-site request in an admin's
 * browser) an admin session add, pause, clean and empty queues, including the money queues.
 * Now: read-only unless BULL_BOARD_WRITE=true; when writes are on, a cross-origin request
 * (Origin of another site, or Sec-Fetch-Site: cross-site) is 403 and changes nothing.
 */

const base = '/admin/queues/api/queues';

interface QueueState {
  counts: Record<string, number>;
  paused: boolean;
}

async function stateOf(q: Queue): Promise<QueueState> {
  return { counts: await q.getJobCounts('waiting', 'active', 'delayed', 'failed', 'completed', 'paused', 'prioritized'), paused: await q.isPaused() };
}

/** Each test starts from an unpaused maintenance queue holding one waiting job (so empty/clean would show). */
async function resetQueue(sys: TestSystem): Promise<void> {
  const q = sys.deps.queues.maintenance;
  await q.resume();
  await q.add('cleanup', {} as never, { jobId: 'sec-bull-board-waiting' });
}

function board(sys: TestSystem) {
  const auth = basic('admin', sys.adminKey);
  const q = sys.deps.queues.maintenance;
  const name = encodeURIComponent(q.name);
  const send = (method: 'POST' | 'PUT', path: string, body: unknown, headers: Record<string, string> = {}) =>
    sys.http.request(method, `${base}/${name}${path}`, body, { headers: { authorization: auth, 'content-type': 'application/json', ...headers } });
  return {
    q,
    add: (headers?: Record<string, string>) => send('POST', '/add', { name: 'planted-by-test', data: { from: 'bull-board' }, options: {} }, headers),
    pause: (headers?: Record<string, string>) => send('PUT', '/pause', {}, headers),
    empty: (headers?: Record<string, string>) => send('PUT', '/empty', {}, headers),
    clean: (headers?: Record<string, string>) => send('PUT', '/clean/waiting', {}, headers),
    list: () => sys.http.get(base, { headers: { authorization: auth } }),
  };
}

describe('security: Bull Board is read-only by default', function () {
  this.timeout(30_000);
  let sys: TestSystem;
  before(async () => {
    // No workers: a job added to the maintenance queue stays waiting, where it can be counted.
    sys = await startSystem({ CARD_PARTITIONS: 2 }, { workers: false });
  });
  beforeEach(() => resetQueue(sys));
  after(async () => {
    await sys?.stop();
  });

  it('still serves the queue list to an admin (control)', async () => {
    const r = await board(sys).list();
    expect(r.status, r.text).to.equal(200);
    expect((r.body.queues as { name: string }[]).map((q) => q.name)).to.include(sys.deps.queues.maintenance.name);
  });

  for (const action of ['add', 'pause', 'empty', 'clean'] as const) {
    it(`refuses ${action} with a 4xx even from the same origin, and the queue does not change`, async () => {
      const b = board(sys);
      const before = await stateOf(b.q);
      expect(before.counts.waiting, 'the planted waiting job').to.be.at.least(1);
      const res = await b[action]({ origin: sys.url, 'sec-fetch-site': 'same-origin' });
      expect(res.status, `${action}: ${res.status} ${res.text.slice(0, 200)}`).to.be.within(400, 499);
      expect(await stateOf(b.q), `${action} changed the queue`).to.deep.equal(before);
    });
  }
});

describe('security: Bull Board with BULL_BOARD_WRITE=true refuses cross-site requests', function () {
  this.timeout(30_000);
  let sys: TestSystem;
  before(async () => {
    sys = await startSystem({ CARD_PARTITIONS: 2, BULL_BOARD_WRITE: true }, { workers: false });
  });
  beforeEach(() => resetQueue(sys));
  after(async () => {
    await sys?.stop();
  });

  const crossSite: [string, Record<string, string>][] = [
    ['Origin: http://evil.example', { origin: 'http://evil.example' }],
    ['Sec-Fetch-Site: cross-site', { 'sec-fetch-site': 'cross-site' }],
  ];

  for (const [what, headers] of crossSite) {
    for (const action of ['add', 'pause', 'empty'] as const) {
      it(`${action} with ${what} → 403 and nothing changes`, async () => {
        const b = board(sys);
        const before = await stateOf(b.q);
        expect(before.counts.waiting, 'the planted waiting job').to.be.at.least(1);
        const res = await b[action](headers);
        expect(res.status, `${action}: ${res.text.slice(0, 200)}`).to.equal(403);
        expect(await stateOf(b.q), `${action} changed the queue`).to.deep.equal(before);
      });
    }
  }

  it('a same-origin add works (control: writes are really on)', async () => {
    const b = board(sys);
    const before = await stateOf(b.q);
    const res = await b.add({ origin: sys.url, 'sec-fetch-site': 'same-origin' });
    expect(res.status, res.text.slice(0, 300)).to.equal(200);
    const after = await stateOf(b.q);
    expect(after.counts.waiting, 'waiting jobs after a same-origin add').to.equal((before.counts.waiting ?? 0) + 1);
    const jobs = await b.q.getJobs(['waiting']);
    expect(jobs.map((j) => j.name)).to.include('planted-by-test');
  });
});
