import { expect } from 'chai';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CONFIG_KEYS, ConfigError, loadConfig, loadDotEnv } from '../../config/env.js';

const ADMIN_KEY = 'mps_admin_Vb3q9ZkT1xWm7Rc2LpN8yHd4sJf6Ga'; // 40 characters, random

function problemsOf(env: Record<string, string | undefined>): string[] {
  try {
    loadConfig(env);
  } catch (err) {
    expect(err).to.be.instanceOf(ConfigError);
    return (err as ConfigError).problems;
  }
  return expect.fail(`loadConfig(${JSON.stringify(env)}) should have thrown`);
}

describe('config/env loadConfig', () => {
  describe('defaults', () => {
    const config = loadConfig({});
    const defaults: Record<string, unknown> = {
      NODE_ENV: 'development',
      PORT: 3000,
      LOG_LEVEL: 'info',
      CURRENCY: 'TWD',
      DB_POOL_MAX: 20,
      CARD_PARTITIONS: 16,
      JOB_ATTEMPTS: 5,
      QUEUE_PREFIX: 'mps',
      MAX_AMOUNT: 100_000_000,
      MAX_RECHARGE: 5_000_000,
      MAX_BALANCE: 100_000_000,
      LARGE_TX_ALERT: 5_000_000,
      REFUND_WINDOW_DAYS: 180,
      QR_SINGLE_USE: true,
      QR_DEFAULT_TTL_S: 900,
      SHARED_QR_TTL_S: 300,
      QR_HISTORY_DAYS: 90,
      IDEMPOTENCY_TTL_H: 168,
      MAX_BINDINGS_PER_CARD: 10,
      SETTLEMENT_CRON: '10 0 * * *',
      SETTLEMENT_TZ: 'Asia/Taipei',
      RISK_AUTO_BLOCK: false,
      WEBHOOK_ALLOW_INSECURE: false,
      MPS_ADMIN_KEY: undefined,
      DATABASE_URL: undefined,
      REDIS_URL: undefined,
    };
    for (const [key, value] of Object.entries(defaults)) {
      it(`${key} defaults to ${JSON.stringify(value) ?? 'unset'}`, () => {
        expect((config as Record<string, unknown>)[key]).to.deep.equal(value);
      });
    }

    it('treats empty strings as unset', () => {
      const c = loadConfig({ PORT: '', QR_SINGLE_USE: '', MAX_AMOUNT: '', METRICS_TOKEN: '' });
      expect(c.PORT).to.equal(3000);
      expect(c.QR_SINGLE_USE).to.equal(true);
      expect(c.MAX_AMOUNT).to.equal(100_000_000);
      expect(c.METRICS_TOKEN).to.equal(undefined);
    });

    it('reads only the environment it is given', () => {
      expect(loadConfig({}).PORT).to.equal(3000);
      expect(loadConfig({ PORT: '8080' }).PORT).to.equal(8080);
    });
  });

  describe('parsing', () => {
    it('turns numbers, booleans and amounts into typed values', () => {
      const c = loadConfig({
        PORT: '8080',
        CARD_PARTITIONS: '64',
        QR_SINGLE_USE: 'false',
        RISK_AUTO_BLOCK: '1',
        WEBHOOK_ALLOW_INSECURE: '0',
        MAX_AMOUNT: '500.50',
        MAX_RECHARGE: '1000',
        REFUND_WINDOW_DAYS: '0',
        NODE_ENV: 'production',
        METRICS_TOKEN: 'metrics-token-of-16+',
      });
      expect(c.PORT).to.equal(8080);
      expect(c.CARD_PARTITIONS).to.equal(64);
      expect(c.QR_SINGLE_USE).to.equal(false);
      expect(c.RISK_AUTO_BLOCK).to.equal(true);
      expect(c.WEBHOOK_ALLOW_INSECURE).to.equal(false);
      expect(c.MAX_AMOUNT).to.equal(50_050);
      expect(c.MAX_RECHARGE).to.equal(100_000);
      expect(c.REFUND_WINDOW_DAYS).to.equal(0);
      expect(c.NODE_ENV).to.equal('production');
    });

    it('accepts postgres and redis URLs', () => {
      const c = loadConfig({ DATABASE_URL: 'postgres://u:p@db:5432/mps', REDIS_URL: 'rediss://cache:6380' });
      expect(c.DATABASE_URL).to.equal('postgres://u:p@db:5432/mps');
      expect(c.REDIS_URL).to.equal('rediss://cache:6380');
    });

    it('accepts the Sentinel and Cluster forms of Redis', () => {
      expect(loadConfig({ REDIS_URL: 'redis+sentinel://:pw@s1:26379,s2:26379/mps/2' }).REDIS_URL).to.equal('redis+sentinel://:pw@s1:26379,s2:26379/mps/2');
      expect(loadConfig({ REDIS_CLUSTER_NODES: 'n1:7000,n2:7001' }).REDIS_CLUSTER_NODES).to.equal('n1:7000,n2:7001');
    });

    it('refuses REDIS_URL and REDIS_CLUSTER_NODES together, naming why', () => {
      expect(problemsOf({ REDIS_URL: 'redis://a:6379', REDIS_CLUSTER_NODES: 'n1:7000' })).to.deep.equal(['REDIS_CLUSTER_NODES: set REDIS_URL or REDIS_CLUSTER_NODES, not both']);
    });

    it('applies explicit overrides on top of the environment', () => {
      const c = loadConfig({ PORT: '8080' }, { PORT: 0, CARD_PARTITIONS: 2 });
      expect(c.PORT).to.equal(0);
      expect(c.CARD_PARTITIONS).to.equal(2);
    });

    it('lists every setting in CONFIG_KEYS', () => {
      for (const key of ['PORT', 'CARD_PARTITIONS', 'MAX_AMOUNT', 'QR_SINGLE_USE', 'REFUND_WINDOW_DAYS', 'MPS_ADMIN_KEY', 'SETTLEMENT_CRON']) {
        expect(CONFIG_KEYS).to.include(key);
      }
      expect(Object.keys(loadConfig({})).every((k) => CONFIG_KEYS.includes(k))).to.equal(true);
    });
  });

  describe('validation', () => {
    it('names every bad variable at once', () => {
      const problems = problemsOf({ PORT: 'abc', CARD_PARTITIONS: '0', QR_SINGLE_USE: 'ture', MAX_AMOUNT: '1e3', CURRENCY: 'twd', DATABASE_URL: 'mysql://x' });
      for (const key of ['PORT', 'CARD_PARTITIONS', 'QR_SINGLE_USE', 'MAX_AMOUNT', 'CURRENCY', 'DATABASE_URL']) {
        expect(problems.some((p) => p.startsWith(`${key}:`)), `${key} in ${JSON.stringify(problems)}`).to.equal(true);
      }
      expect(problems).to.have.length(6);
    });

    it('does not blame the variables that are fine', () => {
      const problems = problemsOf({ PORT: 'abc', CARD_PARTITIONS: '16', QR_SINGLE_USE: 'true' });
      expect(problems).to.have.length(1);
      expect(problems[0]).to.match(/^PORT: /);
    });

    it('puts every problem in the error message', () => {
      try {
        loadConfig({ PORT: 'abc', QR_SINGLE_USE: 'ture' });
        expect.fail('should have thrown');
      } catch (err) {
        expect(err).to.be.instanceOf(ConfigError);
        expect((err as Error).message).to.contain('PORT').and.to.contain('QR_SINGLE_USE');
      }
    });

    const bad: Record<string, string[]> = {
      PORT: ['abc', '-1', '65536', '80.5'],
      CARD_PARTITIONS: ['0', '1025', 'many'],
      QR_SINGLE_USE: ['ture', 'yes', 'TRUE'],
      REFUND_WINDOW_DAYS: ['-1', '3651'],
      QR_DEFAULT_TTL_S: ['59', '3601'],
      MAX_AMOUNT: ['0', '0.00', '-5', '1e3', '10.001', 'abc'],
      NODE_ENV: ['prod'],
      LOG_LEVEL: ['verbose'],
      ENCRYPTION_KEY: ['abc', 'g'.repeat(64)],
      METRICS_TOKEN: ['short'],
      REDIS_URL: ['http://cache', 'redis+sentinel://s1:26379', 'redis+sentinel://s1:26379/mps/x', 'redis+sentinel://s1:port/mps', 'redis+sentinel://s1,s2/mps/99x'],
      REDIS_CLUSTER_NODES: ['a:6379,,b:6379', 'a:70000', 'redis://a:6379/1', 'http://a:6379', 'a b'],
      SETTLEMENT_CRON: ['10 0 * *', '* * * * * * *'],
      BODY_LIMIT: ['32', '1gb'],
      QUEUE_PREFIX: ['a:b'],
    };
    for (const [key, values] of Object.entries(bad)) {
      for (const value of values) {
        it(`rejects ${key}=${value}`, () => {
          const problems = problemsOf({ [key]: value });
          expect(problems).to.have.length(1);
          expect(problems[0]).to.match(new RegExp(`^${key}: `));
        });
      }
    }

    it('accepts an MPS_ADMIN_KEY that starts with mps_admin_ and has at least 40 characters', () => {
      expect(loadConfig({ MPS_ADMIN_KEY: ADMIN_KEY }).MPS_ADMIN_KEY).to.equal(ADMIN_KEY);
      expect(loadConfig({ MPS_ADMIN_KEY: `${ADMIN_KEY}y` }).MPS_ADMIN_KEY).to.equal(`${ADMIN_KEY}y`);
    });

    for (const [label, key] of [
      ['39 characters', ADMIN_KEY.slice(0, 39)],
      ['another prefix', `mps_mk_${'x'.repeat(40)}`],
      ['no underscore after admin', `mps_admin${'x'.repeat(40)}`],
      ['upper case', ADMIN_KEY.toUpperCase()],
    ] as const) {
      it(`rejects an MPS_ADMIN_KEY with ${label}`, () => {
        const problems = problemsOf({ MPS_ADMIN_KEY: key });
        expect(problems).to.have.length(1);
        expect(problems[0]).to.match(/^MPS_ADMIN_KEY: .*mps_admin_/);
      });
    }
  });

  describe('the result', () => {
    it('is frozen', () => {
      const c = loadConfig({});
      expect(Object.isFrozen(c)).to.equal(true);
      expect(() => {
        (c as { PORT: number }).PORT = 1;
      }).to.throw(TypeError);
      expect(c.PORT).to.equal(3000);
    });

    it('is frozen with overrides too', () => {
      expect(Object.isFrozen(loadConfig({}, { PORT: 1 }))).to.equal(true);
    });
  });
});

describe('config/env loadDotEnv', () => {
  it('reads a .env file into the environment without overriding what is already set', () => {
    const dir = mkdtempSync(join(tmpdir(), 'mps-dotenv-'));
    const file = join(dir, '.env');
    writeFileSync(file, 'MPS_DOTENV_TEST_NEW=from-file\nMPS_DOTENV_TEST_SET=from-file\n');
    process.env.MPS_DOTENV_TEST_SET = 'from-environment';
    try {
      loadDotEnv(file);
      expect(process.env.MPS_DOTENV_TEST_NEW).to.equal('from-file');
      expect(process.env.MPS_DOTENV_TEST_SET).to.equal('from-environment');
      loadDotEnv(join(dir, 'missing.env'));
    } finally {
      delete process.env.MPS_DOTENV_TEST_NEW;
      delete process.env.MPS_DOTENV_TEST_SET;
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
