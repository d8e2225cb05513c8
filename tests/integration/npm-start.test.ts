import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import type { RunningStack } from '../../dev/stack-file.js';
import type { DemoData } from '../../db/seeds/demo.js';
import { freePort } from '../../dev/stack.js';
import { sleep } from '../helpers/money.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
// What `npm start` runs (npm's own process in between adds nothing but another signal hop).
const TSX = fileURLToPath(new URL('../../node_modules/.bin/tsx', import.meta.url));
const START = join(ROOT, 'dev/start.ts');

interface Started {
  /** The tsx CLI, leader of the process group a terminal would signal. */
  child: ChildProcess;
  output: () => string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  stack: RunningStack;
  demo: DemoData;
}

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

const accepts = (port: number) =>
  new Promise<boolean>((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => (socket.destroy(), resolve(true)));
    socket.once('error', () => resolve(false));
  });

async function until(what: string, check: () => boolean | Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

/**
 * `npm start` in a folder of its own (its ./.data there, so neither a developer's stack nor
 * ./.env is touched), in a process group of its own as a terminal runs a foreground job, with
 * the environment of a new user: no DATABASE_URL / REDIS_URL, so it runs its embedded stack.
 */
async function npmStart(cwd: string, port: number): Promise<Started> {
  const env: NodeJS.ProcessEnv = { ...process.env, PORT: String(port), LOG_LEVEL: 'info' };
  for (const name of ['DATABASE_URL', 'REDIS_URL', 'REDIS_CLUSTER_NODES', 'HOST', 'NODE_ENV', 'WORKER_PROCESSES', 'WORKER_METRICS_PORT', 'SCHEDULER_METRICS_PORT', 'WEBHOOK_ALLOW_INSECURE', 'ENCRYPTION_KEY']) delete env[name];
  const child = spawn(TSX, [START], { cwd, env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  let output = '';
  child.stdout!.on('data', (c: Buffer) => (output += c.toString()));
  child.stderr!.on('data', (c: Buffer) => (output += c.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  await until('npm start to be up', () => output.includes('MPS is up') || child.exitCode !== null, 120_000).catch((err: Error) => {
    throw new Error(`${err.message}; output:\n${output}`);
  });
  expect(child.exitCode, output).to.equal(null);
  const stack = JSON.parse(readFileSync(join(cwd, '.data/stack.json'), 'utf8')) as RunningStack;
  const demo = JSON.parse(readFileSync(join(cwd, '.data/demo.json'), 'utf8')) as DemoData;
  return { child, output: () => output, exited, stack, demo };
}

/** Everything it started is gone: its processes, Postgres (its pid file), Redis (its port), ./.data/stack.json. */
async function expectAllStopped(cwd: string, run: Started): Promise<void> {
  const pids = [run.stack.pid, ...run.stack.processes!.map((p) => p.pid)];
  await until('every process to be gone', () => pids.every((pid) => !alive(pid)), 10_000);
  expect(existsSync(join(cwd, '.data/pg/postmaster.pid')), 'Postgres pid file').to.equal(false);
  expect(await accepts(Number(new URL(run.stack.redisUrl!).port)), 'Redis still accepts connections').to.equal(false);
  expect(existsSync(join(cwd, '.data/stack.json')), './.data/stack.json').to.equal(false);
}

/** The output has "Stopped." and no warning or error: no pino line at warn or above, no Node warning. */
function expectCleanStop(output: string): void {
  expect(output).to.contain('Stopping …');
  expect(output.trimEnd().endsWith('Stopped.'), output.slice(-2000)).to.equal(true);
  const bad = output.split('\n').filter((line) => (line.startsWith('{') ? /"level":(40|50|60)/.test(line) : /\(node:\d+\)|warning|while stopping|failed|error/i.test(line)));
  expect(bad, 'warnings or errors in the output').to.deep.equal([]);
}

describe('npm start (dev/start.ts): separate processes, one Ctrl-C', function () {
  this.timeout(240_000);
  let cwd: string;
  let port: number;
  let run: Started | undefined;

  before(async () => {
    cwd = mkdtempSync(join(tmpdir(), 'mps-npm-start-'));
    // As root, the embedded Postgres runs as the "postgres" user, which must reach ./.data.
    chmodSync(cwd, 0o755);
    port = await freePort();
  });

  afterEach(async () => {
    // After a failed assertion: SIGTERM lets it stop its stack; SIGKILL only if that fails.
    if (run && run.child.exitCode === null && run.child.signalCode === null) {
      if (alive(run.stack.pid)) process.kill(run.stack.pid, 'SIGTERM');
      await Promise.race([run.exited, sleep(45_000)]);
      for (const pid of [run.child.pid!, run.stack.pid, ...(run.stack.processes ?? []).map((p) => p.pid)]) if (alive(pid)) process.kill(pid, 'SIGKILL');
    }
    run = undefined;
  });

  after(() => {
    rmSync(cwd, { recursive: true, force: true });
  });

  it('runs web, worker and scheduler as processes of their own that take a payment; SIGINT to the process group stops them all, then the stack', async () => {
    run = await npmStart(cwd, port);
    const { stack, demo } = run;
    const byName = Object.fromEntries(stack.processes!.map((p) => [p.name, p.pid]));
    expect(Object.keys(byName)).to.deep.equal(['web', 'worker', 'scheduler']);
    const pids = [stack.pid, ...Object.values(byName)];
    expect(new Set(pids).size, `pids ${pids.join(', ')}`).to.equal(4);
    expect(pids).not.to.include(process.pid);
    // Each is the entry point of the Procfile process it is named after, alive, a child of npm start.
    const entries: Record<string, string> = { web: 'api/server.ts', worker: 'workers/main.ts', scheduler: 'workers/scheduler.ts' };
    for (const [name, pid] of Object.entries(byName)) {
      expect(alive(pid), name).to.equal(true);
      expect(readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0'), name).to.include(join(ROOT, entries[name]!));
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      expect(Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]), `${name}'s parent`).to.equal(stack.pid);
    }
    expect(run.output()).to.contain(`Processes    web        pid ${byName.web}`);
    expect(run.output()).to.contain('A QR payment, ready to paste');

    // The demo's QR payment: issued by the web process, charged by the worker process.
    const api = stack.apiUrl;
    expect(api).to.equal(`http://127.0.0.1:${port}`);
    const post = (path: string, key: string, body: unknown, headers: Record<string, string> = {}) =>
      fetch(`${api}${path}`, { method: 'POST', headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) });
    const qr = (await (await post(`/v1/cards/${demo.prepaidCardId}/qr`, demo.appKey, {})).json()) as { qr_plain: string };
    const paid = await post('/v1/payments', demo.merchantKey, { qr: qr.qr_plain, amount: '1.00' }, { 'idempotency-key': randomUUID(), prefer: 'wait=10' });
    expect(paid.status).to.equal(200);
    expect(((await paid.json()) as { status: string }).status).to.equal('succeeded');

    process.kill(-run.child.pid!, 'SIGINT');
    const exit = await run.exited;
    expect(exit, run.output()).to.deep.equal({ code: 0, signal: null });
    expectCleanStop(run.output());
    for (const name of Object.keys(byName)) expect(run.output()).to.match(new RegExp(`"process":"${name}".*"msg":"${name} stopping"`));
    await expectAllStopped(cwd, run);
  });

  it('SIGTERM to the npm start process alone stops them all too (and the next start shows the same demo keys)', async () => {
    const keys = JSON.parse(readFileSync(join(cwd, '.data/demo.json'), 'utf8')) as DemoData;
    run = await npmStart(cwd, port);
    expect(run.demo).to.deep.equal(keys);
    expect(run.output()).to.contain(keys.merchantKey);
    process.kill(run.stack.pid, 'SIGTERM');
    const exit = await run.exited;
    expect(exit, run.output()).to.deep.equal({ code: 0, signal: null });
    expectCleanStop(run.output());
    await expectAllStopped(cwd, run);
  });

  it('a process that dies stops everything with a message naming it, and exit code 1', async () => {
    run = await npmStart(cwd, port);
    const worker = run.stack.processes!.find((p) => p.name === 'worker')!;
    process.kill(worker.pid, 'SIGKILL');
    const exit = await run.exited;
    expect(exit, run.output()).to.deep.equal({ code: 1, signal: null });
    expect(run.output()).to.contain(`MPS worker (pid ${worker.pid}) ended unexpectedly with signal SIGKILL; stopping everything.`);
    expect(run.output().trimEnd().endsWith('Stopped.')).to.equal(true);
    await expectAllStopped(cwd, run);
  });
});
