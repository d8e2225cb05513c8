import type { ApiKeyRow } from '../db/queries/api-keys.js';
import type { BindingRow } from '../db/queries/bindings.js';
import type { IdentityRow } from '../db/queries/identities.js';
import type { LevelRow } from '../db/queries/levels.js';
import type { MerchantRow } from '../db/queries/merchants.js';
import { formatRate, parseRate } from '../domain/money.js';
import { iso } from './serializers.js';

// JSON of the objects that api/serializers.ts does not cover: merchants, keys, identities, bindings, levels.

export function merchantJson(m: MerchantRow) {
  return {
    id: m.id,
    code: m.code,
    name: m.name,
    // Fee rates carry 4 decimals ("0.0060"): basis points matter for merchant fees.
    fee_rate: Number(m.fee_rate).toFixed(4),
    // A changed rate applies from the next settlement day: until then the previous one settles.
    fee_rate_from: m.fee_rate_from ?? null,
    previous_fee_rate: m.previous_fee_rate == null ? null : Number(m.previous_fee_rate).toFixed(4),
    settlement_mode: m.settlement_mode,
    status: m.status,
    created_at: iso(m.created_at),
    updated_at: iso(m.updated_at),
  };
}

export function apiKeyJson(k: ApiKeyRow) {
  return {
    id: k.id,
    prefix: k.prefix,
    name: k.name,
    role: k.role,
    merchant_id: k.merchant_id,
    status: k.status,
    created_at: iso(k.created_at),
    last_used_at: iso(k.last_used_at),
    revoked_at: iso(k.revoked_at),
  };
}

export function identityJson(i: IdentityRow) {
  return { id: i.id, provider: i.provider, external_id: i.external_id, created_at: iso(i.created_at) };
}

export function bindingJson(b: BindingRow) {
  return { card_id: b.card_id, member_id: b.member_id, role: b.role, created_at: iso(b.created_at) };
}

export function levelJson(l: LevelRow) {
  return { level: l.level, name: l.name, local_name: l.local_name, min_points: l.min_points, discount_rate: formatRate(parseRate(l.discount_rate)) };
}
