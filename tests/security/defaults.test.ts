import { randomBytes } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { expect } from 'chai';
import { closeDeps, createDeps } from '../../app/deps.js';
import { loadConfig } from '../../config/env.js';
import { startApi } from '../../api/server.js';
import { newApiKey } from '../../domain/tokens.js';
import { testEnv } from '../helpers/env.js';
import { startSystem, type TestSystem } from '../helpers/system.js';
import { configProblems, expectCode, productionEnv } from './helpers.js';

/**
 * Finding: unsafe defaults. Production must not start with /metrics open or with a guessable
 * bootstrap admin key; the API's listen address is configurable (HOST, default 0.0.0.0) so that
 * the embedded `npm start` can listen on loopback only.
 */

describe('security: production defaults in config', () => {
  it('a complete production environment loads (control)', () => {
    const config = loadConfig(productionEnv());
    expect(config.NODE_ENV).to.equal('production');
  });

  it('NODE_ENV=production without METRICS_TOKEN is a ConfigError naming METRICS_TOKEN', () => {
    const { message } = configProblems(productionEnv({ METRICS_TOKEN: undefined }));
    expect(message).to.contain('METRICS_TOKEN');
  });

  const weak: [string, string][] = [
    ["'mps_admin_' + 'a' × 30", `mps_admin_${'a'.repeat(30)}`],
    ["'mps_admin_' + 'abcd' × 8", `mps_admin_${'abcd'.repeat(8)}`],
  ];
  for (const [what, key] of weak) {
    it(`MPS_ADMIN_KEY = ${what} is a ConfigError naming MPS_ADMIN_KEY (production)`, () => {
      expect(key.length, 'long enough for the old length rule').to.be.at.least(40);
      const { message } = configProblems(productionEnv({ MPS_ADMIN_KEY: key }));
      expect(message).to.contain('MPS_ADMIN_KEY');
    });
    it(`MPS_ADMIN_KEY = ${what} is a ConfigError naming MPS_ADMIN_KEY (any NODE_ENV)`, () => {
      const { message } = configProblems({ MPS_ADMIN_KEY: key });
      expect(message).to.contain('MPS_ADMIN_KEY');
    });
  }

  it("a key from newApiKey('admin') is accepted as MPS_ADMIN_KEY", () => {
    // Many of them: a strength heuristic must not turn away an unlucky random key.
    for (let i = 0; i < 100; i += 1) {
      const key = newApiKey('admin').key;
      expect(loadConfig(i % 2 ? productionEnv({ MPS_ADMIN_KEY: key }) : { MPS_ADMIN_KEY: key }).MPS_ADMIN_KEY).to.equal(key);
    }
  });

  it("HOST defaults to '0.0.0.0'", () => {
    expect(loadConfig({}).HOST).to.equal('0.0.0.0');
  });
});

describe('security: /metrics with METRICS_TOKEN', function () {
  this.timeout(30_000);
  const token = randomBytes(24).toString('hex');
  let sys: TestSystem;
  before(async () => {
    sys = await startSystem({ METRICS_TOKEN: token, CARD_PARTITIONS: 2 }, { workers: false });
  });
  after(async () => {
    await sys?.stop();
  });

  it('is 401 without the token or with a wrong one, 200 with it', async () => {
    expectCode(await sys.http.get('/metrics'), 401, 'UNAUTHENTICATED', 'no token');
    expectCode(await sys.http.get('/metrics', { headers: { authorization: `Bearer ${token}x` } }), 401, 'UNAUTHENTICATED', 'wrong token');
    const ok = await sys.http.get('/metrics', { headers: { authorization: `Bearer ${token}` } });
    expect(ok.status).to.equal(200);
    expect(ok.text).to.contain('# HELP');
  });
});

describe('security: the API listens on HOST', function () {
  this.timeout(30_000);

  it("startApi with HOST '127.0.0.1' (no host argument) listens on 127.0.0.1 only", async () => {
    const config = loadConfig(
      { DATABASE_URL: testEnv.databaseUrl, REDIS_URL: testEnv.redisUrl, LOG_LEVEL: 'silent', NODE_ENV: 'test', HOST: '127.0.0.1' },
      { QUEUE_PREFIX: `t${randomBytes(4).toString('hex')}`, CARD_PARTITIONS: 2, ENCRYPTION_KEY: randomBytes(32).toString('hex') },
    );
    const deps = await createDeps(config);
    try {
      const api = await startApi(deps, 0);
      try {
        const address = api.server.address() as AddressInfo;
        expect(address.address).to.equal('127.0.0.1');
        const health = await fetch(`http://127.0.0.1:${address.port}/health`);
        expect(health.status).to.equal(200);
      } finally {
        await api.stop();
      }
    } finally {
      await closeDeps(deps);
    }
  });
});
