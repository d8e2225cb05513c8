import { randomBytes } from 'node:crypto';
import { createKnex, migrateLatest } from '../../db/knex.js';
import { testEnv } from './env.js';

/**
 * A new, migrated database on the run's Postgres, for tests that read platform-wide totals or
 * global state (the report rollup) and so must not see other files' rows. `drop` removes it.
 */
export async function freshDatabase(prefix: string): Promise<{ url: string; drop(): Promise<void> }> {
  const admin = createKnex(testEnv.databaseUrl, 1, () => undefined);
  const name = `${prefix}_${randomBytes(4).toString('hex')}`;
  await admin.raw(`CREATE DATABASE ${name}`);
  const url = new URL(testEnv.databaseUrl);
  url.pathname = `/${name}`;
  const migrator = createKnex(url.toString(), 2, () => undefined);
  try {
    await migrateLatest(migrator);
  } finally {
    await migrator.destroy();
  }
  return {
    url: url.toString(),
    drop: async () => {
      await admin.raw(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await admin.destroy();
    },
  };
}
