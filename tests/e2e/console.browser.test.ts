import { statSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { expect } from 'chai';
import type { Page } from 'playwright-core';
import { runDetectAnomalies } from '../../jobs/detect-anomalies.js';
import { basicAuth, headlessChromium } from '../helpers/browser.js';
import { createMember, createMerchant, issueCard } from '../helpers/fixtures.js';
import { freshDatabase } from '../helpers/fresh-database.js';
import { charge, chargeOk, expectFailed, expectSucceeded, rechargeOk, refund } from '../helpers/money.js';
import type { PeriodJson } from '../helpers/report-json.js';
import { startSystem, type TestSystem } from '../helpers/system.js';


/** What the page shows, read from the DOM: the bars of both charts and the cells of every table. */
async function readConsole(page: Page) {
  return page.evaluate(() => {
    const bars = (id: string) =>
      [...document.querySelectorAll(`#${id} rect.bar`)].map((r) => ({
        key: r.getAttribute('data-key'),
        value: r.getAttribute('data-value'),
        count: Number(r.getAttribute('data-count')),
        height: Number(r.getAttribute('height')),
        title: r.querySelector('title')?.textContent ?? '',
      }));
    const chart = (id: string) => {
      const svg = document.querySelector(`#${id} svg`);
      return { max: Number(svg?.getAttribute('data-max')), plotHeight: Number(svg?.getAttribute('data-plot-height')) };
    };
    const table = (id: string) =>
      [...document.querySelectorAll(`#${id} tbody tr`)].map((tr) => Object.fromEntries([...tr.querySelectorAll('td')].map((td) => [td.getAttribute('data-col'), td.textContent])));
    const figures = Object.fromEntries([...document.querySelectorAll('#today-figures [data-figure]')].map((d) => [d.getAttribute('data-figure'), d.querySelector('dd')?.textContent]));
    return {
      ready: document.body.dataset.ready,
      status: document.getElementById('status')?.textContent,
      scope: document.getElementById('scope')?.textContent,
      days: bars('days-chart'),
      daysChart: chart('days-chart'),
      hours: bars('hours-chart'),
      hoursChart: chart('hours-chart'),
      daysTable: table('days-table'),
      hoursTable: table('hours-table'),
      txTable: table('tx-table'),
      txTableHidden: (document.getElementById('tx-table') as HTMLElement).hidden,
      recentNote: (document.getElementById('recent-note') as HTMLElement).hidden ? null : document.getElementById('recent-note')?.textContent,
      alertsHidden: (document.getElementById('alerts') as HTMLElement).hidden,
      alertsTable: table('alerts-table'),
      figures,
      todayDate: document.getElementById('today-date')?.textContent,
    };
  });
}

const declinesText = (d: Record<string, number>) =>
  Object.entries(d)
    .map(([code, n]) => `${code} ${n}`)
    .join(', ');

/** The page's charts and tables against the API's report, figure by figure. */
function expectConsoleShows(shown: Awaited<ReturnType<typeof readConsole>>, days: PeriodJson[], hours: PeriodJson[]) {
  expect(shown.ready, shown.status ?? '').to.equal('true');
  // 30 bars, one per day of the API's report, each with its payment amount and count, scaled to the largest.
  expect(shown.days.map((b) => [b.key, b.value, b.count])).to.deep.equal(days.map((d) => [d.date, d.payment_amount, d.payment_count]));
  const max = Math.max(...days.map((d) => Number(d.payment_amount)));
  expect(shown.daysChart.max).to.equal(max);
  for (const [i, bar] of shown.days.entries()) {
    expect(bar.height, bar.key!).to.be.closeTo(max > 0 ? (Number(days[i]!.payment_amount) / max) * shown.daysChart.plotHeight : 0, 0.01);
    expect(bar.title).to.equal(`${days[i]!.date}: ${days[i]!.payment_amount} (${days[i]!.payment_count} payments, net ${days[i]!.net_amount})`);
  }
  // The table lists the same days, newest first.
  expect(shown.daysTable).to.deep.equal(
    [...days].reverse().map((d) => ({
      date: d.date,
      payment_count: String(d.payment_count),
      payment_amount: d.payment_amount,
      refund_count: String(d.refund_count),
      refund_amount: d.refund_amount,
      recharge_count: String(d.recharge_count),
      recharge_amount: d.recharge_amount,
      net_amount: d.net_amount,
      distinct_cards: String(d.distinct_cards),
      declines: declinesText(d.declines),
    })),
  );
  // Today's figures.
  const today = days.at(-1)!;
  expect(shown.todayDate).to.equal(today.date);
  expect(shown.figures).to.deep.include({
    payment_count: String(today.payment_count),
    payment_amount: today.payment_amount,
    refund_amount: `${today.refund_amount} (${today.refund_count})`,
    recharge_amount: `${today.recharge_amount} (${today.recharge_count})`,
    net_amount: today.net_amount,
    distinct_cards: String(today.distinct_cards),
    declines: String(Object.values(today.declines).reduce((a, b) => a + b, 0)),
  });
  for (const [method, amount] of Object.entries(today.by_method)) expect(shown.figures[`by_method.${method}`], method).to.equal(amount);
  for (const [code, n] of Object.entries(today.declines)) expect(shown.figures[`declines.${code}`], code).to.equal(String(n));
  // Today by hour: 24 bars and rows.
  expect(shown.hours.map((b) => [b.key, b.value, b.count])).to.deep.equal(hours.map((h) => [String(h.hour), h.payment_amount, h.payment_count]));
  expect(shown.hoursTable.map((r) => [r.hour, r.payment_count, r.payment_amount, r.refund_amount, r.net_amount, r.distinct_cards, r.declines])).to.deep.equal(
    hours.map((h) => [`${String(h.hour).padStart(2, '0')}:00`, String(h.payment_count), h.payment_amount, h.refund_amount, h.net_amount, String(h.distinct_cards), declinesText(h.declines)]),
  );
  const hourMax = Math.max(...hours.map((h) => Number(h.payment_amount)));
  for (const [i, bar] of shown.hours.entries()) expect(bar.height).to.be.closeTo(hourMax > 0 ? (Number(hours[i]!.payment_amount) / hourMax) * shown.hoursChart.plotHeight : 0, 0.01);
}

describe('the console at /console (HTTP Basic; a page over the JSON API)', function () {
  this.timeout(120_000);
  let database: Awaited<ReturnType<typeof freshDatabase>>;
  let sys: TestSystem;
  let a: { key: string; id: string };
  let b: { key: string; id: string };

  before(async () => {
    database = await freshDatabase('mps_console');
    // A low large-payment threshold, so that one payment raises a risk alert.
    sys = await startSystem({ LARGE_TX_ALERT: 15_000 }, { databaseUrl: database.url });
    const [ma, mb] = [await createMerchant(sys), await createMerchant(sys)];
    a = { key: ma.key, id: ma.merchant.id };
    b = { key: mb.key, id: mb.merchant.id };
    const owner = await createMember(sys);
    const prepaid = await issueCard(sys, { type: 'prepaid', ownerMemberId: owner.id });
    await rechargeOk(sys, prepaid.id, '1000.00');
    const paid = await chargeOk(sys, a.key, prepaid.id, '200.00');
    await chargeOk(sys, a.key, owner.cards[0]!.id, '45.50', { payment_method: 'cash' });
    expectSucceeded(await refund(sys, a.key, { original_tx_no: paid.result!.tx_no, amount: '20.00' }), 'refund');
    expectFailed(await charge(sys, a.key, { qr: `mpsq_${randomBytes(32).toString('base64url')}`, amount: '1.00' }), 'QR_EXPIRED_OR_INVALID');
    await chargeOk(sys, b.key, owner.cards[0]!.id, '12.00', { payment_method: 'line_pay' });
    expect((await runDetectAnomalies(sys.deps)).raised).to.be.at.least(1);
  });
  after(async () => {
    await sys?.stop();
    await database?.drop();
  });

  describe('over HTTP', () => {
    it('refuses wrong or missing credentials with 401 and a Basic challenge, on the page and its API', async () => {
      const attempts: Record<string, string | undefined> = {
        none: undefined,
        'merchant key as admin': basicAuth('admin', a.key),
        'admin key as merchant': basicAuth('merchant', sys.adminKey),
        'unknown merchant key': basicAuth('merchant', `mps_mk_${'x'.repeat(43)}`),
        'another user name': basicAuth('root', sys.adminKey),
        'Bearer, not Basic': `Bearer ${sys.adminKey}`,
        'empty password': basicAuth('admin', ''),
      };
      for (const [what, authorization] of Object.entries(attempts)) {
        for (const path of ['/console', '/console/v1/reports/daily', '/console/v1/merchant/reports/daily']) {
          const res = await sys.http.get(path, { headers: authorization ? { authorization } : {} });
          expect(res.status, `${what} on ${path}`).to.equal(401);
          expect(res.headers.get('www-authenticate'), what).to.match(/^Basic realm="MPS console"/);
          expect(res.body.error.code).to.equal('UNAUTHENTICATED');
        }
      }
    });

    it('serves one page with a strict CSP, and its API answers as /v1 does for that key', async () => {
      const page = await sys.http.get('/console', { headers: { authorization: basicAuth('merchant', a.key) } });
      expect(page.status).to.equal(200);
      expect(page.headers.get('content-type')).to.match(/^text\/html/);
      expect(page.headers.get('cache-control')).to.equal('no-store');
      const csp = page.headers.get('content-security-policy')!;
      expect(csp).to.contain("default-src 'none'").and.contain("script-src 'self'").and.contain("connect-src 'self'").and.not.contain('unsafe-inline');
      expect(page.text).to.contain('data-role="merchant"');
      expect(page.text).to.not.match(/https?:\/\//);
      for (const asset of ['/console/assets/console.js', '/console/assets/console.css']) {
        const res = await sys.http.get(asset);
        expect(res.status, asset).to.equal(200);
        expect(res.text).to.not.match(/https?:\/\/(?!www\.w3\.org\/2000\/svg)/);
      }
      const viaConsole = await sys.http.get('/console/v1/merchant/reports/daily', { headers: { authorization: basicAuth('merchant', a.key) } });
      const viaApi = await sys.http.get('/v1/merchant/reports/daily', { key: a.key });
      expect(viaConsole.status).to.equal(200);
      expect(viaConsole.body).to.deep.equal(viaApi.body);
      // Roles and tenants as on /v1: a merchant on the admin report is 403 there too.
      const adminRoute = await sys.http.get('/console/v1/reports/daily', { headers: { authorization: basicAuth('merchant', a.key) } });
      expect(adminRoute.status).to.equal(403);
      expect(adminRoute.body.error.code).to.equal('FORBIDDEN');
    });

    it('reaches only the reads the page needs, and none from another site', async () => {
      const asAdmin = { authorization: basicAuth('admin', sys.adminKey) };
      for (const path of ['/console/v1/members?phone=1', '/console/v1/audit/events', '/console/v1/api-keys', '/console/v1/settlements']) {
        const res = await sys.http.get(path, { headers: asAdmin });
        expect(res.status, path).to.equal(404);
      }
      const write = await sys.http.post('/console/v1/merchants', { code: 'CONSOLE1', name: 'x' }, { headers: asAdmin });
      expect(write.status).to.equal(404);
      const crossSite = await sys.http.get('/console/v1/reports/daily', { headers: { ...asAdmin, 'sec-fetch-site': 'cross-site' } });
      expect(crossSite.status).to.equal(403);
      expect((await sys.http.get('/console/v1/reports/daily', { headers: { ...asAdmin, 'sec-fetch-site': 'same-origin' } })).status).to.equal(200);
    });
  });

  describe('in a real headless browser', () => {
    const chromiumFor = headlessChromium('console');

    /** Opens /console as `user` with `key`; fails on a request to another host, a CSP violation or a script error. */
    async function openConsole(user: 'admin' | 'merchant', key: string, query = '') {
      const context = await chromiumFor.browser().newContext({ httpCredentials: { username: user, password: key } });
      const elsewhere: string[] = [];
      const problems: string[] = [];
      await context.route('**/*', (route) => {
        if (new URL(route.request().url()).host === new URL(sys.url).host) return route.continue();
        elsewhere.push(route.request().url());
        return route.abort();
      });
      // tsx compiles the functions given to page.evaluate with esbuild's keepNames, which calls a
      // __name helper the page does not have; the page's own script is served as written.
      await context.addInitScript('globalThis.__name = (fn) => fn;');
      const page = await context.newPage();
      page.on('console', (m) => {
        if (m.type() === 'error' || m.type() === 'warning') problems.push(`${m.text()} (${m.location().url})`);
      });
      page.on('pageerror', (err) => problems.push(err.message));
      const response = await page.goto(`${sys.url}/console${query}`);
      expect(response?.status()).to.equal(200);
      await page.waitForFunction(() => document.body.dataset.ready !== 'false', undefined, { timeout: 20_000 });
      return { context, page, elsewhere, problems };
    }

    it("a merchant sees its own shop: the 30-day chart, today's figures and hours and its transactions equal the API's", async () => {
      const { context, page, elsewhere, problems } = await openConsole('merchant', a.key);
      try {
        const shown = await readConsole(page);
        const days = (await sys.http.get('/v1/merchant/reports/daily', { key: a.key })).body.data as PeriodJson[];
        const hours = (await sys.http.get('/v1/merchant/reports/daily?granularity=hour', { key: a.key })).body.data as PeriodJson[];
        expect(days).to.have.length(30);
        expectConsoleShows(shown, days, hours);
        expect(shown.scope).to.equal(`Merchant ${a.id}`);
        // What A did today, seen in the figures: 245.50 paid (a balance and a cash payment), 20.00 refunded, one decline.
        expect(shown.figures).to.deep.include({ payment_count: '2', payment_amount: '245.50', net_amount: '225.50', distinct_cards: '2', 'by_method.balance': '200.00', 'by_method.cash': '45.50', 'declines.QR_EXPIRED_OR_INVALID': '1' });
        // B's payment is not A's.
        expect(shown.figures).to.not.have.property('by_method.line_pay');
        const txs = (await sys.http.get('/v1/merchant/transactions?limit=20', { key: a.key })).body.data as { tx_no: string; final_amount: string; type: string; created_at: string }[];
        expect(txs).to.have.length(3);
        expect(shown.txTable.map((r) => [r.tx_no, r.type, r.final_amount, r.created_at])).to.deep.equal(txs.map((t) => [t.tx_no, t.type, t.final_amount, t.created_at]));
        expect(shown.alertsHidden, 'no risk alerts for a merchant').to.equal(true);
        const shot = join(process.env.CONSOLE_SHOT_DIR ?? chromiumFor.shotDir(), 'console-merchant.png');
        await page.screenshot({ path: shot, fullPage: true });
        expect(statSync(shot).size).to.be.greaterThan(10_000);
        expect(elsewhere, 'requests to other hosts').to.deep.equal([]);
        expect(problems, 'console errors (CSP violations, script errors)').to.deep.equal([]);
      } finally {
        await context.close();
      }
    });

    it('an admin sees the platform and the open risk alerts, equal to the API; with ?merchant_id= one merchant', async () => {
      const { context, page, elsewhere, problems } = await openConsole('admin', sys.adminKey);
      try {
        const shown = await readConsole(page);
        const days = (await sys.http.get('/v1/reports/daily', { key: sys.adminKey })).body.data as PeriodJson[];
        const hours = (await sys.http.get('/v1/reports/daily?granularity=hour', { key: sys.adminKey })).body.data as PeriodJson[];
        expectConsoleShows(shown, days, hours);
        expect(shown.scope).to.equal('Admin · whole platform');
        expect(shown.figures).to.deep.include({ payment_count: '3', payment_amount: '257.50', distinct_cards: '2', 'by_method.line_pay': '12.00' });
        const alerts = (await sys.http.get('/v1/risk/alerts?status=open&limit=20', { key: sys.adminKey })).body.data as { rule: string; subject_id: string; created_at: string }[];
        expect(alerts.length).to.be.at.least(1);
        expect(shown.alertsHidden).to.equal(false);
        expect(shown.alertsTable.map((r) => [r.created_at, r.rule, r.subject])).to.deep.equal(alerts.map((x: any) => [x.created_at, x.rule, `${x.subject_type} ${x.subject_id}`]));
        // Recent transactions across merchants come from GET /v1/transactions when the server has it; otherwise the page says so.
        const list = await sys.http.get('/v1/transactions?limit=20', { key: sys.adminKey });
        if (list.status === 200) {
          expect(shown.txTable.map((r) => r.tx_no)).to.deep.equal(list.body.data.map((t: { tx_no: string }) => t.tx_no));
          expect(problems, 'console errors').to.deep.equal([]);
        } else {
          expect(list.status).to.equal(404);
          expect(shown.txTableHidden).to.equal(true);
          expect(shown.recentNote).to.contain('GET /v1/transactions');
          // Chromium logs the page's one 404 (its probe for the list); nothing else.
          expect(problems, 'console errors').to.deep.equal([`Failed to load resource: the server responded with a status of 404 (Not Found) (${sys.url}/console/v1/transactions?limit=20)`]);
        }
        await page.screenshot({ path: join(process.env.CONSOLE_SHOT_DIR ?? chromiumFor.shotDir(), 'console-admin.png'), fullPage: true });
        expect(elsewhere, 'requests to other hosts').to.deep.equal([]);
      } finally {
        await context.close();
      }
      const one = await openConsole('admin', sys.adminKey, `?merchant_id=${b.id}`);
      try {
        const shown = await readConsole(one.page);
        const days = (await sys.http.get(`/v1/reports/daily?merchant_id=${b.id}`, { key: sys.adminKey })).body.data as PeriodJson[];
        const hours = (await sys.http.get(`/v1/reports/daily?merchant_id=${b.id}&granularity=hour`, { key: sys.adminKey })).body.data as PeriodJson[];
        expectConsoleShows(shown, days, hours);
        expect(shown.scope).to.equal(`Admin · merchant ${b.id}`);
        expect(shown.figures).to.deep.include({ payment_count: '1', payment_amount: '12.00' });
        expect(one.problems.filter((p) => !p.includes('/console/v1/transactions?'))).to.deep.equal([]);
      } finally {
        await one.context.close();
      }
    });

    it('refuses a browser that offers a merchant key as user admin', async () => {
      const context = await chromiumFor.browser().newContext({ httpCredentials: { username: 'admin', password: a.key } });
      try {
        const page = await context.newPage();
        const statuses: number[] = [];
        page.on('response', (r) => {
          if (new URL(r.url()).pathname === '/console') statuses.push(r.status());
        });
        const outcome = await page.goto(`${sys.url}/console`).then(
          (r) => `status ${r?.status()}`,
          (err: Error) => err.message,
        );
        expect(outcome).to.match(/ERR_INVALID_AUTH_CREDENTIALS|status 401/);
        expect(statuses.length).to.be.greaterThan(0);
        expect(statuses.every((s) => s === 401)).to.equal(true);
      } finally {
        await context.close();
      }
    });
  });
});
