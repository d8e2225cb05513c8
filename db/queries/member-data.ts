import type { Db } from '../knex.js';

/**
 * Everything MPS holds about one member, for a data export: profile, identities, cards it owns or
 * is bound to, bindings, transactions it made, the ledgers of the cards it owns, QR history.
 */
export async function collectMemberData(db: Db, memberId: string) {
  const [profile, identities, bindings, cards, transactions, balanceLedger, pointLedger, qrHistory, tokens, profileChanges] = await Promise.all([
    db('member_profiles').where({ id: memberId }).first(),
    db('member_external_identities').where({ member_id: memberId }).orderBy('created_at'),
    db('card_bindings').where({ member_id: memberId }).orderBy('created_at'),
    db('member_cards as c').join('card_bindings as b', 'b.card_id', 'c.id').where('b.member_id', memberId).select('c.*', 'b.role as binding_role').orderBy('c.created_at'),
    db('transactions').where({ member_id: memberId }).orderBy('created_at'),
    db('balance_ledger as l').join('member_cards as c', 'c.id', 'l.card_id').where('c.owner_member_id', memberId).select('l.*').orderBy('l.id'),
    db('point_ledger as l').join('member_cards as c', 'c.id', 'l.card_id').where('c.owner_member_id', memberId).select('l.*').orderBy('l.id'),
    db('card_qr_history').where({ member_id: memberId }).select('card_id', 'issued_at', 'expires_at', 'used_at', 'revoked_at', 'end_reason').orderBy('id'),
    db('api_keys').where({ member_id: memberId }).select('id', 'prefix', 'status', 'expires_at', 'created_at').orderBy('created_at'),
    db('member_profile_changes').where({ member_id: memberId }).select('id', 'before', 'after', 'api_key_id', 'created_at').orderBy('created_at'),
  ]);
  const cardsWithoutSecrets = cards.map(({ binding_password_hash: _secret, ...card }: Record<string, unknown>) => card);
  return { profile, identities, bindings, cards: cardsWithoutSecrets, transactions, balance_ledger: balanceLedger, point_ledger: pointLedger, qr_history: qrHistory, member_tokens: tokens, profile_changes: profileChanges };
}

/**
 * Erasure: the person's data goes (name, phone, email, the values of past profile corrections,
 * external identities, live QR tokens, member tokens); the financial records stay, tied to the
 * member's id and number only.
 */
export async function anonymizeMember(trx: Db, memberId: string): Promise<void> {
  await trx('member_profiles').where({ id: memberId }).update({ name: 'erased member', phone: null, email: null, status: 'erased', erased_at: trx.fn.now(), updated_at: trx.fn.now() });
  await trx('member_profile_changes').where({ member_id: memberId }).del();
  await trx('member_external_identities').where({ member_id: memberId }).del();
  const tokens = await trx('card_qr_state').where({ member_id: memberId }).del().returning('token_hash');
  if (tokens.length) {
    await trx('card_qr_history').whereIn('token_hash', tokens.map((t: { token_hash: string }) => t.token_hash)).whereNull('end_reason').update({ end_reason: 'revoked', revoked_at: trx.fn.now() });
  }
  await trx('api_keys').where({ member_id: memberId, status: 'active' }).update({ status: 'revoked', revoked_at: trx.fn.now() });
}
