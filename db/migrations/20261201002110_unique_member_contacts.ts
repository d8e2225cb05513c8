import type { Knex } from 'knex';

/**
 * Phone and email are unique among members that are not erased (erasure clears both anyway), as
 * keys (mps_phone_key, mps_email_key): a second member with a phone or email in use is 409
 * MEMBER_EXISTS. The indexes name the rule; the API maps a violation of either to that code.
 *
 * A live database may already hold duplicates (nothing refused them before). This migration does
 * not guess which member keeps a phone, and changes no member: it first looks for duplicates and,
 * if there are any, fails before building anything, naming each group by member number (no phone
 * or email in the message: it reaches logs). The operator decides: give all but one member of each
 * group another phone or email (or none), or erase members that are not real, then run
 * `npm run migrate` again.
 * Built CONCURRENTLY, so payments and sign-ups go on while it builds (no transaction around it);
 * should a duplicate arrive during the build, the half-built index is dropped and the same
 * message names it.
 */
export const config = { transaction: false };

const INDEXES = [
  { name: 'member_profiles_phone_key', field: 'phone', key: 'mps_phone_key(phone)', column: 'phone' },
  { name: 'member_profiles_email_key', field: 'email', key: 'mps_email_key(email)', column: 'email' },
] as const;

async function duplicateGroups(knex: Knex, index: (typeof INDEXES)[number]): Promise<string[]> {
  const { rows } = await knex.raw<{ rows: { members: string[] }[] }>(
    `SELECT array_agg(member_no ORDER BY created_at, id) AS members FROM member_profiles
      WHERE status <> 'erased' AND ${index.column} IS NOT NULL
      GROUP BY ${index.key} HAVING count(*) > 1 ORDER BY min(created_at) LIMIT 50`,
  );
  return rows.map((r) => r.members.join(' = '));
}

function blocked(field: string, groups: string[]): Error {
  return new Error(
    `Cannot make member ${field}s unique: ${groups.length}${groups.length === 50 ? '+' : ''} group(s) of members share one ${field} ` +
      `(by member number, oldest first): ${groups.join('; ')}. Give all but one member of each group another ${field} or none ` +
      `(UPDATE member_profiles SET ${field} = … WHERE member_no = …), or erase members that are not real (POST /v1/members/:id/erase), ` +
      `then run npm run migrate again. Nothing was changed.`,
  );
}

export async function up(knex: Knex): Promise<void> {
  for (const index of INDEXES) {
    const groups = await duplicateGroups(knex, index);
    if (groups.length) throw blocked(index.field, groups);
  }
  for (const index of INDEXES) {
    // An index left invalid by an interrupted earlier run would satisfy IF NOT EXISTS without enforcing anything.
    await dropIfInvalid(knex, index.name);
    try {
      await knex.raw(`CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS ${index.name} ON member_profiles (${index.key}) WHERE status <> 'erased' AND ${index.column} IS NOT NULL`);
    } catch (err) {
      if ((err as { code?: string }).code !== '23505') throw err;
      // A duplicate arrived during the build: leave the schema as it was found.
      await down(knex);
      throw blocked(index.field, await duplicateGroups(knex, index));
    }
  }
}

async function dropIfInvalid(knex: Knex, name: string): Promise<void> {
  const { rows } = await knex.raw<{ rows: unknown[] }>(`SELECT 1 FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid WHERE c.relname = ? AND NOT i.indisvalid`, [name]);
  if (rows.length) await knex.raw(`DROP INDEX CONCURRENTLY IF EXISTS ${name}`);
}

export async function down(knex: Knex): Promise<void> {
  for (const index of INDEXES) await knex.raw(`DROP INDEX CONCURRENTLY IF EXISTS ${index.name}`);
}
