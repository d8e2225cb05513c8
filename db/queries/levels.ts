import type { Db } from '../knex.js';
import { parseRate } from '../../domain/money.js';
import type { Level } from '../../domain/levels.js';

export interface LevelRow {
  level: number;
  name: string;
  local_name: string;
  min_points: number;
  discount_rate: string;
  updated_at: Date;
}

export async function listLevelRows(db: Db): Promise<LevelRow[]> {
  return db<LevelRow>('membership_levels').orderBy('level');
}

export async function loadLevels(db: Db): Promise<Level[]> {
  return toLevels(await listLevelRows(db));
}

/** Rows (also as JSON from json_agg, where numbers may come as numbers) to the domain's levels. */
export function toLevels(rows: Pick<LevelRow, 'level' | 'name' | 'min_points' | 'discount_rate'>[]): Level[] {
  return rows.map((r) => ({ level: r.level, name: r.name, minPoints: Number(r.min_points), discountMilli: parseRate(r.discount_rate) }));
}

/** Replaces the whole table inside the caller's transaction. */
export async function replaceLevelRows(trx: Db, rows: Omit<LevelRow, 'updated_at'>[]): Promise<LevelRow[]> {
  await trx('membership_levels').del();
  await trx('membership_levels').insert(rows);
  return listLevelRows(trx);
}
