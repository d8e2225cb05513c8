import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import type { Knex } from 'knex';
import { restore, manifestPath, type BackupManifest } from '../../cli/backup.js';
import { BackupError, findPgTool } from '../../cli/pg-tools.js';
import { createKnex, migrateLatest } from '../../db/knex.js';
import { runCli } from '../helpers/cli.js';
import { dumpablePostgres, type DumpablePostgres } from '../helpers/dumpable-postgres.js';
import { createMember, createMerchant, issueCard } from '../helpers/fixtures.js';
import { charge, issueQr, rechargeOk } from '../helpers/money.js';
import { hex, sleep } from '../helpers/sql-rows.js';
import { startSystem, type TestSystem } from '../helpers/system.js';

interface Payment {
  sentAt: number;
  answeredAt: number;
  id: string;
}

/**
 * The backup and restore drill (README "Backup and restore"): `cli backup` while payments run,
 * `cli restore` into a new database on the same server, `verify-ledger` and `verify-audit` on the
 * copy, and a comparison of operation ids: the copy holds every operation accepted before the backup
 * began and none sent after it ended. Runs on a Postgres the installed pg_dump can dump
 * (tests/helpers/dumpable-postgres.ts).
 */
describe('integration: backup and restore drill', function () {
  this.timeout(120_000);
  let server: DumpablePostgres;
  let sourceUrl: string;
  let sys: TestSystem;
  let dir: string;
  let dump: string;
  const knexes: Knex[] = [];
  const open = (url: string) => {
    const db = createKnex(url, 2, () => undefined);
    knexes.push(db);
    return db;
  };
  const cliEnv = (url: string): Record<string, string> => ({ DATABASE_URL: url, ...(server.binDir ? { PG_BIN_DIR: server.binDir } : {}) });

  before(async function () {
    this.timeout(120_000);
    server = await dumpablePostgres();
    sourceUrl = await server.createDatabase(`mps_drill_${hex(4)}`);
    await migrateLatest(open(sourceUrl));
    sys = await startSystem({}, { databaseUrl: sourceUrl });
    dir = mkdtempSync(join(tmpdir(), 'mps-backup-'));
    dump = join(dir, 'mps.dump');
  });
  after(async () => {
    await sys?.stop();
    await Promise.all(knexes.map((k) => k.destroy()));
    await server?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('a backup taken under load restores into an empty database where verify-ledger and verify-audit pass; only operations accepted after it are missing', async () => {
    const { key: merchantKey } = await createMerchant(sys);
    const cards = await Promise.all(
      Array.from({ length: 4 }, async () => {
        const member = await createMember(sys);
        const card = await issueCard(sys, { type: 'prepaid', ownerMemberId: member.id });
        await rechargeOk(sys, card.id, '1000.00');
        return card;
      }),
    );

    // Light load: one POS per card, each charging 1.00 after another until told to stop.
    const payments: Payment[] = [];
    let stop = false;
    const pos = async (cardId: string) => {
      while (!stop) {
        const qr = await issueQr(sys, cardId);
        const sentAt = Date.now();
        const res = await charge(sys, merchantKey, { qr, amount: '1.00' }, { wait: 5 });
        expect(res.status, res.text).to.be.oneOf([200, 202]);
        payments.push({ sentAt, answeredAt: Date.now(), id: res.body.id });
      }
    };
    const load = Promise.all(cards.map((c) => pos(c.id)));
    const waitFor = async (done: () => boolean) => {
      for (let i = 0; i < 300 && !done(); i++) await sleep(20);
    };
    await waitFor(() => payments.length >= 8);

    const backupStarted = Date.now();
    const backedUp = await runCli(['backup', '--out', dump], cliEnv(sourceUrl));
    const backupEnded = Date.now();
    expect(backedUp.code, backedUp.out).to.equal(0);
    expect(payments.some((p) => p.sentAt > backupStarted && p.answeredAt < backupEnded), 'payments ran while the backup was taken').to.equal(true);
    await waitFor(() => payments.filter((p) => p.sentAt > backupEnded).length >= 8);
    stop = true;
    await load;

    const manifest = JSON.parse(readFileSync(manifestPath(dump), 'utf8')) as BackupManifest;
    const source = open(sourceUrl);
    const [latest] = await source('knex_migrations').orderBy('id', 'desc').limit(1).pluck('name');
    expect(manifest).to.include({ format: 'pg_dump custom', file: 'mps.dump', migration: latest });
    expect(manifest.sha256).to.match(/^[0-9a-f]{64}$/);
    expect(Date.parse(manifest.created_at)).to.be.a('number').and.not.NaN;

    const copyUrl = await server.createDatabase(`mps_restored_${hex(4)}`);
    const restored = await runCli(['restore', dump], cliEnv(copyUrl));
    expect(restored.code, restored.out).to.equal(0);
    const ledger = await runCli(['verify-ledger'], cliEnv(copyUrl));
    expect(ledger.code, ledger.out).to.equal(0);
    expect(ledger.out).to.match(/\b[1-9]\d* cards checked, 0 mismatched/);
    const audit = await runCli(['verify-audit'], cliEnv(copyUrl));
    expect(audit.code, audit.out).to.equal(0);
    expect(audit.out).to.match(/Audit chain intact: [1-9]\d* events checked/);

    const inSource = new Set<string>(await source('operations').pluck('id'));
    const inCopy = new Set<string>(await open(copyUrl)('operations').pluck('id'));
    expect([...inCopy].filter((id) => !inSource.has(id)), 'operations in the copy only').to.deep.equal([]);
    const acceptedBefore = payments.filter((p) => p.answeredAt < backupStarted);
    const sentAfter = payments.filter((p) => p.sentAt > backupEnded);
    expect(acceptedBefore.length).to.be.at.least(8);
    expect(sentAfter.length).to.be.at.least(8);
    expect(acceptedBefore.filter((p) => !inCopy.has(p.id)), 'accepted before the backup, missing from the copy').to.deep.equal([]);
    expect(sentAfter.filter((p) => inCopy.has(p.id)), 'sent after the backup, yet in the copy').to.deep.equal([]);
    // What the copy lacks is exactly some of what was accepted once the backup had begun.
    const missing = [...inSource].filter((id) => !inCopy.has(id));
    const acceptedBeforeIds = new Set(acceptedBefore.map((p) => p.id));
    expect(missing.filter((id) => acceptedBeforeIds.has(id))).to.deep.equal([]);
    expect(missing.length).to.be.at.least(sentAfter.length);
    expect(missing.every((id) => payments.some((p) => p.id === id && p.answeredAt >= backupStarted)), 'every missing operation is a payment answered after the backup began').to.equal(true);
    const during = payments.filter((p) => p.answeredAt >= backupStarted && p.sentAt <= backupEnded).length;
    console.log(`      [drill] backup ${backupEnded - backupStarted} ms (${manifest.bytes} bytes) with ${during} payments in flight or answered meanwhile; copy has ${inCopy.size} of ${inSource.size} operations, ${missing.length} missing`);
  });

  it('backup refuses when no pg_dump is as new as the server, saying what to install', async () => {
    let refusal: unknown;
    await findPgTool('pg_dump', 99, server.binDir).catch((err: unknown) => (refusal = err));
    expect(refusal).to.be.instanceOf(BackupError);
    expect(String(refusal)).to.match(/pg_dump 99 or newer is needed .*; found: .*pg_dump \(\d+\.\d+\)/);
    expect(String(refusal)).to.contain('postgresql-client-99');
  });

  it('restore refuses a database that is not empty, and a dump that does not match its manifest', async () => {
    const binDir = server.binDir;
    const source = open(sourceUrl);
    let refusal: unknown;
    await restore(source, sourceUrl, dump, { binDir }).catch((err: unknown) => (refusal = err));
    expect(String(refusal)).to.match(/is not empty \(\d+ relations, e\.g\. public\..*\): restore only into a new, empty database/);

    const damaged = join(dir, 'damaged.dump');
    const bytes = readFileSync(dump);
    const middle = bytes.length >> 1;
    bytes[middle] = bytes[middle]! ^ 0xff;
    writeFileSync(damaged, bytes);
    copyFileSync(manifestPath(dump), manifestPath(damaged));
    const emptyUrl = await server.createDatabase(`mps_empty_${hex(4)}`);
    const empty = open(emptyUrl);
    const res = await runCli(['restore', damaged], cliEnv(emptyUrl));
    expect(res.code).to.equal(1);
    expect(res.out).to.match(/Checksum mismatch for .*damaged\.dump: the manifest says [0-9a-f]{64}, the file is [0-9a-f]{64}/);
    const { rows } = await empty.raw<{ rows: { n: number }[] }>(`SELECT count(*)::int AS n FROM pg_tables WHERE schemaname = 'public'`);
    expect(rows[0]!.n).to.equal(0);

    const noManifest = join(dir, 'lonely.dump');
    copyFileSync(dump, noManifest);
    const lonely = await runCli(['restore', noManifest], cliEnv(emptyUrl));
    expect(lonely.code).to.equal(1);
    expect(lonely.out).to.contain('No manifest at');
  });
});
