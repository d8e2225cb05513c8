import { randomBytes } from 'node:crypto';
import { expect } from 'chai';
import knexFactory, { type Knex } from 'knex';
import { createKnex, migrateLatest } from '../../db/knex.js';
import { migrationSource } from '../../db/migrations/index.js';
import { testEnv } from '../helpers/env.js';

/**
 * The migration that makes member phones and emails unique, on a database of its own that already
 * holds duplicates (as a live one may): it refuses with a message naming them and changes
 * nothing; once they are resolved it builds the indexes, which then refuse new duplicates.
 */
describe('integration: migration unique_member_contacts on a database with duplicates', function () {
  this.timeout(60_000);
  let admin: Knex;
  let db: Knex;
  let dbName: string;

  before(async () => {
    admin = createKnex(testEnv.databaseUrl, 1, () => undefined);
    dbName = `mps_contacts_${randomBytes(4).toString('hex')}`;
    await admin.raw(`CREATE DATABASE ${dbName}`);
    const url = new URL(testEnv.databaseUrl);
    url.pathname = `/${dbName}`;
    // Knex would print each refused migration; the test reads the error itself.
    const quiet = () => undefined;
    db = knexFactory({ client: 'pg', connection: url.toString(), pool: { min: 0, max: 2 }, migrations: { migrationSource, tableName: 'knex_migrations' }, log: { warn: quiet, error: quiet, debug: quiet, deprecate: quiet } });
    await migrateLatest(db);
    // Back to just before the rule (this runs the down of every later migration, too).
    for (let i = 0; i < 200; i++) {
      const [done] = (await db.migrate.list()) as [{ name: string }[]];
      if (!done.some((m) => m.name === '20261201002110_unique_member_contacts')) break;
      await db.migrate.down();
    }
  });
  after(async () => {
    await db?.destroy();
    await admin.raw(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`);
    await admin.destroy();
  });

  const member = async (fields: { phone?: string | null; email?: string | null; status?: string }) => {
    const [row] = await db('member_profiles').insert({ name: 'Legacy', phone: fields.phone ?? null, email: fields.email ?? null, status: fields.status ?? 'active' }).returning(['id', 'member_no']);
    return row as { id: string; member_no: string };
  };
  const indexes = async () => (await db('pg_indexes').where({ tablename: 'member_profiles' }).pluck('indexname')) as string[];

  it('refuses while two members share a phone or email (as keys), naming them by number, and builds nothing', async () => {
    const a = await member({ phone: '0911 222 333', email: 'Same@Example.com' });
    const b = await member({ phone: '0911-222-333' });
    const c = await member({ email: 'same@example.com' });
    // An erased member's leftovers do not count (erasure clears them; the rule is among the others).
    await member({ phone: '0911222333', status: 'erased' });
    const refusal = () => migrateLatest(db).then(() => undefined, (err: Error) => err);
    let failure = await refusal();
    expect(failure?.message).to.match(/Cannot make member phones unique: 1 group/);
    expect(failure?.message).to.contain(`${a.member_no} = ${b.member_no}`);
    expect(failure?.message).to.not.contain('0911');
    expect(await indexes()).to.not.include('member_profiles_phone_key');

    await db('member_profiles').where({ id: b.id }).update({ phone: '0911222334' });
    failure = await refusal();
    expect(failure?.message).to.match(/Cannot make member emails unique: 1 group/);
    expect(failure?.message).to.contain(`${a.member_no} = ${c.member_no}`);
    expect(failure?.message).to.not.contain('example.com');
    expect(await indexes()).to.not.include('member_profiles_phone_key');
    const [done] = (await db.migrate.list()) as [{ name: string }[]];
    expect(done.map((m) => m.name)).to.not.include('20261201002110_unique_member_contacts');
  });

  it('once resolved, builds both indexes and the later migrations; a new duplicate is then refused', async () => {
    await db('member_profiles').where({ email: 'same@example.com' }).update({ email: null });
    await migrateLatest(db);
    expect(await indexes()).to.include.members(['member_profiles_phone_key', 'member_profiles_email_key']);
    const [, pending] = (await db.migrate.list()) as [unknown[], unknown[]];
    expect(pending).to.deep.equal([]);
    const err = await member({ phone: '0911222333' }).catch((e: { code?: string; constraint?: string }) => e);
    expect(err).to.include({ code: '23505', constraint: 'member_profiles_phone_key' });
    // Erased members stay outside the rule.
    await member({ email: 'SAME@example.com', status: 'erased' });
  });
});
