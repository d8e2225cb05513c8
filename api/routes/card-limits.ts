import { Router } from 'express';
import { z } from 'zod';
import type { Deps } from '../../app/deps.js';
import type { CardLimits } from '../../domain/card-limits.js';
import { parseAmount } from '../../domain/money.js';
import { fields, parse } from '../../domain/validate.js';
import { setLimits } from '../../services/card-limits.js';
import { allow } from '../middleware/auth.js';
import { callerOf, idParam } from '../route-helpers.js';
import { limitsJson } from '../serializers.js';

/** Each limit may be left out (unchanged) or null (back to the platform default); at least one is given. */
const limitsBody = z
  .strictObject({
    single_payment_limit: fields.amount.nullable().optional(),
    daily_spend_limit: fields.amount.nullable().optional(),
    daily_payment_count: z.number().int().min(1).max(1_000_000).nullable().optional(),
  })
  .refine((b) => Object.keys(b).length > 0, 'give at least one of single_payment_limit, daily_spend_limit, daily_payment_count');

/** PUT /v1/cards/:id/limits: a card's own spending limits. */
export function cardLimitRoutes(deps: Deps): Router {
  const router = Router();
  const { config } = deps;

  router.put('/cards/:id/limits', allow('admin', 'app', 'member'), async (req, res) => {
    const id = idParam(req, 'id', 'card');
    const body = parse(limitsBody, req.body);
    const amount = (value: string | number | null | undefined, field: string) => (value === undefined || value === null ? value : parseAmount(value, config.MAX_AMOUNT, field));
    const change: Partial<CardLimits> = {
      ...(body.single_payment_limit !== undefined ? { single_payment_limit: amount(body.single_payment_limit, 'single_payment_limit') } : {}),
      ...(body.daily_spend_limit !== undefined ? { daily_spend_limit: amount(body.daily_spend_limit, 'daily_spend_limit') } : {}),
      ...(body.daily_payment_count !== undefined ? { daily_payment_count: body.daily_payment_count } : {}),
    };
    const card = await setLimits(deps, callerOf(req), id, change);
    res.json({ card_id: card.id, ...limitsJson(card, config) });
  });

  return router;
}
