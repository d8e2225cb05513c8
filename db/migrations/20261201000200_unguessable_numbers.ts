import type { Knex } from 'knex';

// Card and transaction numbers from counters told a merchant the platform's volume and its
// neighbours' card numbers. These make them random (from gen_random_uuid, a CSPRNG) with a Luhn
// check digit, so a mistyped number is caught and none is found by counting.
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
    CREATE FUNCTION mps_random_digits(digits int) RETURNS text LANGUAGE sql VOLATILE AS $$
      SELECT lpad((('x' || substr(md5(gen_random_uuid()::text), 1, 15))::bit(60)::bigint % (10::numeric ^ digits)::bigint)::text, digits, '0')
    $$`);
  await knex.raw(`
    CREATE FUNCTION mps_luhn(body text) RETURNS text LANGUAGE plpgsql IMMUTABLE AS $$
    DECLARE
      total int := 0;
      d int;
      twice boolean := true;
    BEGIN
      FOR i IN REVERSE length(body)..1 LOOP
        d := substr(body, i, 1)::int;
        IF twice THEN d := d * 2; IF d > 9 THEN d := d - 9; END IF; END IF;
        total := total + d;
        twice := NOT twice;
      END LOOP;
      RETURN body || ((10 - total % 10) % 10)::text;
    END $$`);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw('DROP FUNCTION mps_luhn(text)');
  await knex.raw('DROP FUNCTION mps_random_digits(int)');
}
