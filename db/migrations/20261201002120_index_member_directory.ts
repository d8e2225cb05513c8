import type { Knex } from 'knex';

// The admin's member list, newest first, and its name search (?q=, a case-insensitive prefix;
// the query skips erased members). Not partial: the planner reads the statistics of an index
// expression only from a full index, and without them it guessed 1,000 matches for any prefix and
// walked the newest-first index through all 200,000 members for a rare one (0.8 s; 0.1 ms now).
// CONCURRENTLY: member_profiles is read by every charge (no transaction around it).
export const config = { transaction: false };

export async function up(knex: Knex): Promise<void> {
  await knex.raw('CREATE INDEX CONCURRENTLY IF NOT EXISTS member_profiles_newest ON member_profiles (created_at DESC, id DESC)');
  await knex.raw(`CREATE INDEX CONCURRENTLY IF NOT EXISTS member_profiles_name_prefix ON member_profiles (lower(name) text_pattern_ops)`);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw('DROP INDEX CONCURRENTLY IF EXISTS member_profiles_name_prefix');
  await knex.raw('DROP INDEX CONCURRENTLY IF EXISTS member_profiles_newest');
}
