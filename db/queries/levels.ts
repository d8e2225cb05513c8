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
  const rows = await listLevelRows(db);
  return rows.map((r) => ({ level: r.level, name: r.name, minPoints: r.min_points, discountMilli: parseRate(r.discount_rate) }));
}
