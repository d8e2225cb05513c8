import type { Knex } from 'knex';

// Phones and emails are compared as keys, not as typed: a phone without the spaces and dashes the
// API lets through ("0988-123 456" is "0988123456"; "+886…" and "0…" stay different numbers), an
// email in lower case (mailbox providers treat the local part case-insensitively, and people type
// it both ways). One SQL definition, IMMUTABLE, so the unique indexes and every lookup agree.
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`CREATE FUNCTION mps_phone_key(phone text) RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$ SELECT regexp_replace(phone, '[^0-9+]', '', 'g') $$`);
  await knex.raw(`CREATE FUNCTION mps_email_key(email text) RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$ SELECT lower(btrim(email)) $$`);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw('DROP FUNCTION mps_email_key(text)');
  await knex.raw('DROP FUNCTION mps_phone_key(text)');
}
