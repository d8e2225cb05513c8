import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import type { Knex } from 'knex';
import { doctor, formatReport } from '../../cli/doctor.js';
import { loadConfig } from '../../config/env.js';
import { closeDeps, createDeps, type Deps } from '../../app/deps.js';
import { createKnex, migrateLatest } from '../../db/knex.js';
import { testEnv } from '../helpers/env.js';
import { insertOperation } from '../helpers/sql-rows.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** Runs `npm run cli -- doctor` as an operator would, against the given database. */
function runDoctorCli(databaseUrl: string, queuePrefix: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn('npm', ['run', '-s', 'cli', '--', 'doctor'], {
      cwd: ROOT,
      env: { ...process.env, DATABASE_URL: databaseUrl, REDIS_URL: testEnv.redisUrl, QUEUE_PREFIX: queuePrefix, LOG_LEVEL: 'silent' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

const check = (checks: Awaited<ReturnType<typeof doctor>>, name: string) => {
  const found = checks.find((c) => c.name === name);
  expect(found, `check ${name} in ${JSON.stringify(checks)}`).to.not.equal(undefined);
  return found!;
};

/**
 * The doctor reads global state (every operation, every delivery), so it runs against a database
 * of its own on the test server: other test files' rows cannot change its verdict.
 */
describe('cli doctor', function () {
  this.timeout(30_000);
  let admin: Knex;
  let dbName: string;
  let databaseUrl: string;
  let deps: Deps;

  before(async () => {
    admin = createKnex(testEnv.databaseUrl, 1, () => undefined);
    dbName = `mps_doctor_${randomBytes(4).toString('hex')}`;
    await admin.raw(`CREATE DATABASE ${dbName}`);
    const url = new URL(testEnv.databaseUrl);
    url.pathname = `/${dbName}`;
    databaseUrl = url.toString();
    const migrator = createKnex(databaseUrl, 2, () => undefined);
    await migrateLatest(migrator);
    await migrator.destroy();
    const config = loadConfig({ DATABASE_URL: databaseUrl, REDIS_URL: testEnv.redisUrl, LOG_LEVEL: 'silent', NODE_ENV: 'test' }, { QUEUE_PREFIX: `t${randomBytes(4).toString('hex')}`, CARD_PARTITIONS: 2 });
    deps = await createDeps(config);
  });
  after(async () => {
    await deps?.redis.config('SET', 'maxmemory-policy', 'noeviction').catch(() => undefined);
    await deps?.queues.partitions[0]?.obliterate({ force: true }).catch(() => undefined);
    if (deps) await closeDeps(deps);
    await admin.raw(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`);
    await admin.destroy();
  });

  it('reports ok for Postgres, Redis (noeviction, AOF), migrations and an idle system', async () => {
    const checks = await doctor(deps);
    expect(checks.map((c) => c.name)).to.deep.equal(['postgres', 'migrations', 'operation registry', 'redis', 'queue backlog', 'stuck operations', 'webhook deliveries', 'risk alerts', 'disk']);
    for (const c of checks.filter((x) => x.name !== 'disk')) expect(c.level, `${c.name}: ${c.detail}`).to.equal('ok');
    expect(check(checks, 'disk').level).to.be.oneOf(['ok', 'warn']);
    expect(check(checks, 'postgres').detail).to.match(/^PostgreSQL \d+/);
    expect(check(checks, 'operation registry').detail).to.match(/^\d+ kinds: payment, refund, recharge/);
    expect(check(checks, 'redis').detail).to.contain('maxmemory-policy=noeviction; appendonly=yes');
    expect(check(checks, 'migrations').detail).to.equal('current');
    expect(check(checks, 'queue backlog').detail).to.equal('all queues empty');
    const report = formatReport(checks);
    expect(report.split('\n')).to.have.length(9);
    expect(report).to.match(/^OK {2}\s+postgres/m);
    expect(report).to.not.contain('FAIL');
  });

  it('fails "stuck operations" for work open longer than 2 × RECONCILE_AFTER_S, and the CLI exits 1 until it is resolved', async () => {
    const threshold = deps.config.RECONCILE_AFTER_S * 2;
    const stuck = await insertOperation(deps.db, { status: 'queued', createdAtSql: `now() - make_interval(secs => ${threshold + 120})` });
    const stuckProcessing = await insertOperation(deps.db, { status: 'processing', createdAtSql: `now() - make_interval(secs => ${threshold + 30})` });
    // Open, but younger than the threshold: the reconciler has not had its chance yet.
    const young = await insertOperation(deps.db, { status: 'queued', createdAtSql: `now() - make_interval(secs => ${Math.floor(threshold / 2)})` });

    const checks = await doctor(deps);
    const c = check(checks, 'stuck operations');
    expect(c.level).to.equal('fail');
    expect(c.detail).to.match(/1 queued \(oldest \d+ s\)/);
    expect(c.detail).to.match(/1 processing \(oldest \d+ s\)/);
    expect(Number(/1 queued \(oldest (\d+) s\)/.exec(c.detail)![1])).to.be.within(threshold + 110, threshold + 300);

    const failing = await runDoctorCli(databaseUrl, deps.config.QUEUE_PREFIX);
    expect(failing.code, failing.stdout + failing.stderr).to.equal(1);
    expect(failing.stdout).to.match(/^FAIL {2}stuck operations/m);
    expect(failing.stdout).to.match(/^OK {4}postgres/m);

    await deps.db('operations').whereIn('id', [stuck, stuckProcessing]).update({ status: 'succeeded', completed_at: deps.db.fn.now() });
    expect(check(await doctor(deps), 'stuck operations').level).to.equal('ok');
    const passing = await runDoctorCli(databaseUrl, deps.config.QUEUE_PREFIX);
    expect(passing.code, passing.stdout + passing.stderr).to.equal(0);
    expect(passing.stdout).to.match(/^OK {4}stuck operations/m);
    expect(passing.stdout).to.not.contain('FAIL');
    await deps.db('operations').where({ id: young }).update({ status: 'succeeded', completed_at: deps.db.fn.now() });
  });

  it('fails "redis" when maxmemory-policy may evict jobs', async () => {
    await deps.redis.config('SET', 'maxmemory-policy', 'allkeys-lru');
    try {
      const c = check(await doctor(deps), 'redis');
      expect(c.level).to.equal('fail');
      expect(c.detail).to.contain('maxmemory-policy=allkeys-lru');
      expect(c.detail).to.contain('must be noeviction');
    } finally {
      await deps.redis.config('SET', 'maxmemory-policy', 'noeviction');
    }
    expect(check(await doctor(deps), 'redis').level).to.equal('ok');
  });

  it('fails "migrations" while one is pending', async () => {
    const migrator = createKnex(databaseUrl, 1, () => undefined);
    try {
      await migrator.migrate.down();
      const c = check(await doctor(deps), 'migrations');
      expect(c.level).to.equal('fail');
      expect(c.detail).to.contain('npm run cli -- migrate');
    } finally {
      await migrateLatest(migrator);
      await migrator.destroy();
    }
    expect(check(await doctor(deps), 'migrations').level).to.equal('ok');
  });

  it('warns (without failing) on a queue backlog over 1000 jobs', async () => {
    const queue = deps.queues.partitions[0]!;
    await queue.addBulk(Array.from({ length: 1001 }, (_, i) => ({ name: 'payment', data: { operationId: `op_backlog_${i}` }, opts: { jobId: `op_backlog_${i}` } })));
    try {
      const checks = await doctor(deps);
      const c = check(checks, 'queue backlog');
      expect(c.level).to.equal('warn');
      expect(c.detail).to.contain('card-ops-{0}: 1001 open, 0 failed');
      expect(checks.some((x) => x.level === 'fail'), JSON.stringify(checks)).to.equal(false);
    } finally {
      await queue.obliterate({ force: true });
    }
    expect(check(await doctor(deps), 'queue backlog').level).to.equal('ok');
  });

  it('fails every check that needs Postgres when Postgres is unreachable, without throwing', async () => {
    const config = loadConfig({ DATABASE_URL: 'postgres://mps:mps@127.0.0.1:1/none', REDIS_URL: testEnv.redisUrl, LOG_LEVEL: 'silent', NODE_ENV: 'test' }, { QUEUE_PREFIX: deps.config.QUEUE_PREFIX, CARD_PARTITIONS: 2 });
    const down = await createDeps(config);
    // knex prints every failed connection attempt to the console; this test expects them.
    (down.db.client as { logger: { warn: (message: string) => void } }).logger.warn = () => undefined;
    try {
      const checks = await doctor(down);
      for (const name of ['postgres', 'migrations', 'stuck operations', 'webhook deliveries', 'risk alerts']) expect(check(checks, name).level, name).to.equal('fail');
      expect(check(checks, 'redis').level).to.equal('ok');
    } finally {
      await closeDeps(down);
    }
  });
});
