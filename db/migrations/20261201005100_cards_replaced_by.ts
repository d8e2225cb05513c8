import type { Knex } from 'knex';

// A replaced card (lost, damaged) is closed and names the card that took over its balance,
// points, level and bindings. A member's one standard card is one *open* standard card: the
// replacement of a standard card closes the old one and inserts the new one in the same
// statement (operations/card-replacement.ts), so the rule is checked at commit (deferred), when
// the old card is closed, whatever order the statement's parts ran in.
export async function up(knex: Knex): Promise<void> {
  await knex.raw('ALTER TABLE member_cards ADD COLUMN replaced_by uuid REFERENCES member_cards(id)');
  await knex.raw('DROP INDEX member_cards_one_standard');
  await knex.raw(`ALTER TABLE member_cards ADD CONSTRAINT member_cards_one_standard
    EXCLUDE USING btree (owner_member_id WITH =) WHERE (type = 'standard' AND status <> 'closed') DEFERRABLE INITIALLY DEFERRED`);
  await knex.raw(`ALTER TABLE member_cards ADD CONSTRAINT member_cards_replaced_is_closed CHECK (replaced_by IS NULL OR status = 'closed')`);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw('ALTER TABLE member_cards DROP CONSTRAINT member_cards_replaced_is_closed');
  await knex.raw('ALTER TABLE member_cards DROP CONSTRAINT member_cards_one_standard');
  await knex.raw(`CREATE UNIQUE INDEX member_cards_one_standard ON member_cards (owner_member_id) WHERE type = 'standard'`);
  await knex.raw('ALTER TABLE member_cards DROP COLUMN replaced_by');
}
