import { randomInt, randomUUID } from 'node:crypto';
import bcrypt from 'bcryptjs';
import type { Deps } from '../../app/deps.js';
import { createApiKey } from '../queries/api-keys.js';
import { insertCard } from '../queries/member-cards.js';
import { findOperation, insertOperation } from '../queries/operations.js';
import { runCardOperation } from '../../jobs/index.js';
import { randomSecret, sha256 } from '../../domain/tokens.js';

export interface DemoData {
  adminKey: string;
  appKey: string;
  merchantKey: string;
  merchantId: string;
  memberId: string;
  standardCardId: string;
  prepaidCardId: string;
  prepaidCardNo: string;
  bindingPassword: string;
}

/**
 * The demo tenant of `npm start`: an admin key, merchant DEMO01 with a key, an app key, and a
 * member with a standard card and a prepaid card holding 1,000.00. The balance arrives through a
 * real recharge operation, so its ledger row is there like any other.
 */
export async function seedDemo(deps: Deps): Promise<DemoData> {
  const { db } = deps;
  // Made per install: a fixed demo password would open every demo deployment's family card.
  const bindingPassword = `Family-${randomInt(1000, 10_000)}-${randomSecret(4)}`;
  const base = await db.transaction(async (trx) => {
    const admin = await createApiKey(trx, { role: 'admin', name: 'demo admin' });
    const app = await createApiKey(trx, { role: 'app', name: 'demo member app' });
    const [merchant] = await trx('merchants').insert({ code: 'DEMO01', name: 'Demo Coffee', fee_rate: '0.0060' }).returning('*');
    const merchantKey = await createApiKey(trx, { role: 'merchant', merchantId: merchant.id, name: 'DEMO01 POS' });
    // Phones and emails are unique among members: the demo's are made per install, like its password.
    const [member] = await trx('member_profiles').insert({ name: '王小明', phone: `09${randomInt(10_000_000, 100_000_000)}`, email: `ming.${randomSecret(4).toLowerCase()}@example.com` }).returning('*');
    const standard = await insertCard(trx, { type: 'standard', owner_member_id: member.id });
    const prepaid = await insertCard(trx, { type: 'prepaid', owner_member_id: member.id, binding_password_hash: await bcrypt.hash(bindingPassword, 10) });
    await trx('card_bindings').insert([
      { card_id: standard.id, member_id: member.id, role: 'owner' },
      { card_id: prepaid.id, member_id: member.id, role: 'owner' },
    ]);
    return { admin, app, merchant, merchantKey, member, standard, prepaid };
  });

  const operationId = `op_${randomUUID().replaceAll('-', '')}`;
  await insertOperation(db, {
    id: operationId,
    type: 'recharge',
    principal: `key:${base.admin.row.id}`,
    idempotency_key: 'demo-seed-recharge',
    request_hash: sha256('demo-seed-recharge'),
    api_key_id: base.admin.row.id,
    actor_role: 'admin',
    merchant_id: null,
    member_id: null,
    card_id: base.prepaid.id,
    partition: 0,
    qr_token_hash: null,
    amount_minor: 100_000,
    payment_method: 'cash',
    original_tx_no: null,
    params: {},
    request_id: 'seed',
    ip: null,
  });
  await runCardOperation(deps, { operationId });
  const op = await findOperation(db, operationId);
  if (op?.status !== 'succeeded') throw new Error(`demo recharge did not succeed: ${op?.error_code}`);

  return {
    adminKey: base.admin.key,
    appKey: base.app.key,
    merchantKey: base.merchantKey.key,
    merchantId: base.merchant.id,
    memberId: base.member.id,
    standardCardId: base.standard.id,
    prepaidCardId: base.prepaid.id,
    prepaidCardNo: base.prepaid.card_no,
    bindingPassword,
  };
}
