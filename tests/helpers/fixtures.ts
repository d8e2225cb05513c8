import { randomBytes, randomInt } from 'node:crypto';
import { expect } from 'chai';
import { createApiKey } from '../../db/queries/api-keys.js';
import type { TestSystem } from './system.js';

/**
 * Creation helpers over the real API, for tests of every tier. Each makes fresh rows (random
 * codes and names), so tests never depend on one another; each asserts its own success status
 * so that a broken fixture fails where it is used, with the server's answer in the message.
 */

/** JSON shapes as the API returns them (fields tests commonly read). */
export interface MerchantJson {
  id: string;
  code: string;
  name: string;
  fee_rate: string;
  settlement_mode: string;
  status: string;
}
export interface CardJson {
  id: string;
  card_no: string;
  type: string;
  status: string;
  owner_member_id: string;
  balance: string;
  points: number;
  level: number;
  discount_rate: string;
  fixed_discount: string | null;
  face_value: string | null;
  expires_at: string | null;
  created_at: string;
}
export interface MemberJson {
  id: string;
  member_no: string;
  name: string;
  phone: string | null;
  email: string | null;
  status: string;
  cards: CardJson[];
  identities: { id: string; provider: string; external_id: string }[];
}
export interface BindingJson {
  card_id: string;
  member_id: string;
  role: string;
  created_at: string;
}

export const randomCode = (prefix = 'M') => `${prefix}${randomBytes(6).toString('hex').toUpperCase()}`;

/**
 * A phone and an email no other member has: both are unique among members that are not erased
 * (409 MEMBER_EXISTS), and test files share one database (with DATABASE_URL, across runs too).
 */
export const randomPhone = () => `09${randomInt(10_000_000, 100_000_000)}`;
export const randomEmail = (local = 'member') => `${local}.${randomBytes(5).toString('hex')}@example.com`;

function ok(res: { status: number; body: unknown }, expected: number, what: string): void {
  expect(res.status, `${what}: ${JSON.stringify(res.body)}`).to.equal(expected);
}

/** An app key (there is no HTTP route for app keys: operators create them). */
export async function createAppKey(sys: TestSystem): Promise<string> {
  return (await createApiKey(sys.deps.db, { role: 'app', name: 'test app' })).key;
}

/** A merchant and one API key for it, both through the admin API. */
export async function createMerchant(
  sys: TestSystem,
  input: { code?: string; name?: string; fee_rate?: string | number } = {},
): Promise<{ merchant: MerchantJson; key: string; keyId: string }> {
  const res = await sys.http.post('/v1/merchants', { code: input.code ?? randomCode(), name: input.name ?? 'Test Shop', ...(input.fee_rate === undefined ? {} : { fee_rate: input.fee_rate }) }, { key: sys.adminKey });
  ok(res, 201, 'create merchant');
  const keyRes = await sys.http.post(`/v1/merchants/${res.body.id}/api-keys`, {}, { key: sys.adminKey });
  ok(keyRes, 201, 'create merchant key');
  return { merchant: res.body as MerchantJson, key: keyRes.body.key as string, keyId: keyRes.body.id as string };
}

/** A member (with its standard card) created with `key` (admin by default; an app key works too). */
export async function createMember(
  sys: TestSystem,
  input: { key?: string; name?: string; phone?: string; email?: string; identity?: { provider: string; external_id: string } } = {},
): Promise<MemberJson> {
  const { key = sys.adminKey, ...body } = input;
  const res = await sys.http.post('/v1/members', { name: '王小明', ...body }, { key });
  ok(res, 201, 'create member');
  return res.body as MemberJson;
}

/** A member token (`mps_mt_…`) for the member, issued by `key` (admin by default). */
export async function memberToken(sys: TestSystem, memberId: string, key = sys.adminKey): Promise<string> {
  const res = await sys.http.post(`/v1/members/${memberId}/tokens`, {}, { key });
  ok(res, 201, 'issue member token');
  return res.body.token as string;
}

/** A member, its token and its standard card: the usual starting point of a member-side test. */
export async function memberWithToken(sys: TestSystem, input: Parameters<typeof createMember>[1] = {}): Promise<{ member: MemberJson; token: string; standardCard: CardJson }> {
  const member = await createMember(sys, input);
  return { member, token: await memberToken(sys, member.id), standardCard: member.cards[0]! };
}

export const DEFAULT_BINDING_PASSWORD = 'Family-123456';

/**
 * Issues a prepaid, corporate or voucher card to `ownerMemberId`. Shared types get
 * `password` (default DEFAULT_BINDING_PASSWORD); vouchers need `faceValue`.
 */
export async function issueCard(
  sys: TestSystem,
  input: {
    type: 'prepaid' | 'corporate' | 'voucher';
    ownerMemberId: string;
    password?: string;
    faceValue?: string | number;
    fixedDiscount?: string | number;
    expiresAt?: string;
    key?: string;
  },
): Promise<CardJson> {
  const body: Record<string, unknown> = { type: input.type, owner_member_id: input.ownerMemberId };
  if (input.type !== 'voucher') body.binding_password = input.password ?? DEFAULT_BINDING_PASSWORD;
  if (input.faceValue !== undefined) body.face_value = input.faceValue;
  if (input.fixedDiscount !== undefined) body.fixed_discount = input.fixedDiscount;
  if (input.expiresAt !== undefined) body.expires_at = input.expiresAt;
  const res = await sys.http.post('/v1/cards', body, { key: input.key ?? sys.adminKey });
  ok(res, 201, `issue ${input.type} card`);
  return res.body as CardJson;
}

/**
 * Binds a member to a shared card. With a member token (`key` starting mps_mt_) the token's member
 * binds itself; with an app key give `memberId`.
 */
export async function bind(
  sys: TestSystem,
  input: { key: string; cardNo: string; password?: string; memberId?: string; role?: 'admin' | 'member' | 'viewer' },
): Promise<BindingJson> {
  const body: Record<string, unknown> = { card_no: input.cardNo, binding_password: input.password ?? DEFAULT_BINDING_PASSWORD };
  if (input.memberId !== undefined) body.member_id = input.memberId;
  const res = await sys.http.post('/v1/cards/bind', body, { key: input.key });
  ok(res, 201, 'bind card');
  const binding = res.body as BindingJson;
  if (input.role === undefined || input.role === 'member') return binding;
  // The password grants `member`; another role is the owner's or an admin's to give.
  const changed = await sys.http.patch(`/v1/cards/${binding.card_id}/bindings/${binding.member_id}`, { role: input.role }, { key: sys.adminKey });
  ok(changed, 200, 'set binding role');
  return changed.body as BindingJson;
}

/** Row count of a table under a where clause: to show that a refused request changed nothing. */
export async function countRows(sys: TestSystem, table: string, where: Record<string, unknown> = {}): Promise<number> {
  const row = await sys.deps.db(table).where(where).count<{ n: string | number }>({ n: '*' }).first();
  return Number(row?.n ?? 0);
}

/** The newest audit event about one object. */
export async function lastAudit(sys: TestSystem, objectType: string, objectId: string) {
  return sys.deps.db('audit_events').where({ object_type: objectType, object_id: objectId }).orderBy('id', 'desc').first();
}
