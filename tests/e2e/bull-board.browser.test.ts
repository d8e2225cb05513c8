import { statSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'chai';
import { createApiKey } from '../../db/queries/api-keys.js';
import { basicAuth, headlessChromium } from '../helpers/browser.js';
import { createMerchant } from '../helpers/fixtures.js';
import { startSystem, type TestSystem } from '../helpers/system.js';


describe('Bull Board at /admin/queues', function () {
  this.timeout(60_000);
  let sys: TestSystem;
  let merchantKey: string;

  before(async () => {
    // No workers: the board only reads the queues, and the partitions need not be served.
    sys = await startSystem({ CARD_PARTITIONS: 4 }, { workers: false });
    merchantKey = (await createMerchant(sys)).key;
  });
  after(async () => {
    await sys.stop();
  });

  describe('HTTP Basic (user admin, password = an admin API key)', () => {
    it('refuses a request without credentials with 401 and a Basic challenge', async () => {
      const res = await sys.http.get('/admin/queues');
      expect(res.status).to.equal(401);
      expect(res.headers.get('www-authenticate')).to.match(/^Basic realm=/);
      expect(res.body.error.code).to.equal('UNAUTHENTICATED');
      expect(res.text).to.not.contain('MPS queues');
    });

    it('refuses a merchant key, an unknown key, a wrong user and a Bearer admin key with 401', async () => {
      const attempts = {
        'merchant key as password': basicAuth('admin', merchantKey),
        'unknown admin-looking key': basicAuth('admin', `mps_admin_${'x'.repeat(43)}`),
        'admin key under another user': basicAuth('root', sys.adminKey),
        'admin key as Bearer': `Bearer ${sys.adminKey}`,
        'empty password': basicAuth('admin', ''),
      };
      for (const [what, authorization] of Object.entries(attempts)) {
        for (const path of ['/admin/queues', '/admin/queues/api/queues']) {
          const res = await sys.http.get(path, { headers: { authorization } });
          expect(res.status, `${what} on ${path}`).to.equal(401);
          expect(res.text, what).to.not.contain('card-ops-');
        }
      }
    });

    it('serves the board and its queue API to an admin key', async () => {
      const page = await sys.http.get('/admin/queues', { headers: { authorization: basicAuth('admin', sys.adminKey) } });
      expect(page.status).to.equal(200);
      expect(page.headers.get('content-type')).to.match(/text\/html/);
      const api = await sys.http.get('/admin/queues/api/queues', { headers: { authorization: basicAuth('admin', sys.adminKey) } });
      expect(api.status, api.text).to.equal(200);
      const names = (api.body.queues as { name: string }[]).map((q) => q.name).sort();
      expect(names).to.include.members(['card-ops-{0}', 'card-ops-{1}', 'card-ops-{2}', 'card-ops-{3}', 'maintenance-{m}', 'webhooks-{w}']);
    });

    it('a revoked admin key no longer opens the board', async () => {
      const { row, key } = await createApiKey(sys.deps.db, { role: 'admin', name: 'to revoke' });
      expect((await sys.http.get('/admin/queues', { headers: { authorization: basicAuth('admin', key) } })).status).to.equal(200);
      await sys.deps.db('api_keys').where({ id: row.id }).update({ status: 'revoked', revoked_at: sys.deps.db.fn.now() });
      expect((await sys.http.get('/admin/queues', { headers: { authorization: basicAuth('admin', key) } })).status).to.equal(401);
    });
  });

  describe('in a real headless browser', () => {
    const chromiumFor = headlessChromium('bull-board');

    it('lists the partition queues for an admin and renders a screenshot, asking no other host for anything', async () => {
      const context = await chromiumFor.browser().newContext({ httpCredentials: { username: 'admin', password: sys.adminKey } });
      const elsewhere: string[] = [];
      // Every request the page sends passes here; one to another host (a web font, a CDN) is noted and refused.
      await context.route('**/*', (route) => {
        if (new URL(route.request().url()).host === new URL(sys.url).host) return route.continue();
        elsewhere.push(route.request().url());
        return route.abort();
      });
      try {
        const page = await context.newPage();
        const response = await page.goto(`${sys.url}/admin/queues`);
        expect(response?.status()).to.equal(200);
        // The board is a client-side app: the queue names appear once it has fetched its API.
        for (const name of ['card-ops-{0}', 'card-ops-{1}', 'card-ops-{2}', 'card-ops-{3}']) {
          await page.getByText(name, { exact: true }).first().waitFor({ state: 'visible', timeout: 20_000 });
        }
        const body = await page.locator('body').innerText();
        expect(body).to.contain('MPS queues');
        expect(body).to.contain('maintenance-{m}');
        const shot = join(process.env.BULL_BOARD_SHOT_DIR ?? chromiumFor.shotDir(), 'bull-board.png');
        await page.screenshot({ path: shot, fullPage: true });
        expect(statSync(shot).size).to.be.greaterThan(5_000);
        expect(elsewhere, 'requests to other hosts').to.deep.equal([]);
      } finally {
        await context.close();
      }
    });

    for (const who of ['no credentials', 'a merchant key as the password'] as const) {
      it(`refuses a browser that offers ${who}`, async () => {
        const context = await chromiumFor.browser().newContext(who === 'no credentials' ? {} : { httpCredentials: { username: 'admin', password: merchantKey } });
        try {
          const page = await context.newPage();
          const statuses: number[] = [];
          page.on('response', (r) => {
            if (new URL(r.url()).pathname === '/admin/queues') statuses.push(r.status());
          });
          // Chromium answers a Basic challenge it cannot meet by giving up the navigation.
          const outcome = await page.goto(`${sys.url}/admin/queues`).then(
            (r) => `status ${r?.status()}`,
            (err: Error) => err.message,
          );
          expect(outcome).to.match(/ERR_INVALID_AUTH_CREDENTIALS|status 401/);
          expect(statuses.length, 'the server answered the page request').to.be.greaterThan(0);
          expect(statuses.every((s) => s === 401), `statuses ${statuses.join(',')}`).to.equal(true);
        } finally {
          await context.close();
        }
      });
    }
  });
});
