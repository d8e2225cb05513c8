import { z } from 'zod';
import { fields } from '../../domain/validate.js';
import { rateInput } from './common.js';

const level = z.strictObject({
  level: z.number().int().min(0).max(9),
  name: fields.text(50),
  local_name: fields.text(50),
  min_points: z.number().int().min(0).max(1_000_000_000_000),
  discount_rate: rateInput(3),
});

/** The whole table: levels 0..n-1, level 0 from 0 points, thresholds rising with the level. */
export const putLevelsBody = z
  .strictObject({ levels: z.array(level).min(1).max(10) })
  .superRefine(({ levels }, ctx) => {
    const sorted = [...levels].sort((a, b) => a.level - b.level);
    if (sorted.some((l, i) => l.level !== i)) {
      ctx.addIssue({ code: 'custom', path: ['levels'], message: `levels must be numbered 0 to ${levels.length - 1}, each once` });
    }
    if (sorted[0]?.level === 0 && sorted[0].min_points !== 0) ctx.addIssue({ code: 'custom', path: ['levels'], message: 'level 0 must start at 0 points' });
    for (let i = 1; i < sorted.length; i++) {
      if (sorted[i]!.min_points <= sorted[i - 1]!.min_points) {
        ctx.addIssue({ code: 'custom', path: ['levels'], message: 'min_points must rise strictly with the level' });
        break;
      }
    }
  });
