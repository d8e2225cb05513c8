import type { Db } from '../knex.js';

export interface MerchantRow {
  id: string;
  code: string;
  name: string;
  /** The rate last set; it applies from `fee_rate_from` (null: from the start), `previous_fee_rate` before it. */
  fee_rate: string;
  fee_rate_from?: string | null;
  previous_fee_rate?: string | null;
  settlement_mode: string;
  status: 'active' | 'suspended';
  created_at: Date;
  updated_at: Date;
}

export async function insertMerchant(db: Db, merchant: { code: string; name: string; fee_rate: string; settlement_mode: string }): Promise<MerchantRow> {
  const [row] = await db<MerchantRow>('merchants').insert(merchant).returning('*');
  return row!;
}

export async function findMerchant(db: Db, id: string): Promise<MerchantRow | undefined> {
  return db<MerchantRow>('merchants').where({ id }).first();
}

export async function lockMerchant(trx: Db, id: string): Promise<MerchantRow | undefined> {
  return trx<MerchantRow>('merchants').where({ id }).forUpdate().first();
}

export async function setMerchantStatus(db: Db, id: string, status: MerchantRow['status']): Promise<MerchantRow> {
  const [row] = await db<MerchantRow>('merchants').where({ id }).update({ status, updated_at: db.fn.now() } as never).returning('*');
  return row!;
}
