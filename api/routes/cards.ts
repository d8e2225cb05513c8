import { Router, type Request } from 'express';
import type { Deps } from '../../app/deps.js';
import { listBindings } from '../../db/queries/bindings.js';
import type { MemberCardRow } from '../../db/queries/member-cards.js';
import { loadLevels } from '../../db/queries/levels.js';
import { cardRateMilli } from '../../domain/card-rate.js';
import { fieldError, parse } from '../../domain/validate.js';
import { cardFor, isUuid } from '../../services/card-access.js';
import { adjustPoints, bindCard, changeBindingRole, createCard, rotateBindingPassword, unbindCard } from '../../services/cards.js';
import { changeStatus, statusActions } from '../../services/status.js';
import { allow, principalOf } from '../middleware/auth.js';
import { failureLock } from '../middleware/failure-lock.js';
import { rateLimit } from '../middleware/rate-limit.js';
import { callerOf, idParam } from '../route-helpers.js';
import { reasonBody } from '../schemas/common.js';
import { bindBody, bindingPasswordBody, bindingRoleBody, createCardBody, pointsAdjustmentBody } from '../schemas/cards.js';
import { cardJson } from '../serializers.js';
import { bindingJson } from '../views.js';

export function cardRoutes(deps: Deps): Router {
  const router = Router();
  const { db, config } = deps;

  const bindingLock = failureLock(deps, 'bind-fail', config.BINDING_MAX_FAILURES, config.BINDING_LOCK_S, 'BINDING_LOCKED');
  const view = async (card: MemberCardRow) => cardJson(card, cardRateMilli(card, await loadLevels(db)), config);

  router.post('/cards', allow('admin', 'app'), async (req, res) => {
    res.status(201).json(await view(await createCard(deps, callerOf(req), parse(createCardBody, req.body))));
  });

  router.get('/cards/:id', allow('admin', 'app', 'member'), async (req, res) => {
    const principal = principalOf(req);
    const { card, bindingRole } = await cardFor(db, principal, String(req.params.id), 'read');
    // Who else uses a card is for the people who manage it, not for every bound member.
    const seesBindings = bindingRole === null || bindingRole === 'owner' || bindingRole === 'admin';
    const bindings = seesBindings ? (await listBindings(db, card.id)).map(bindingJson) : undefined;
    res.json({ ...(await view(card)), role: bindingRole, bindings });
  });

  for (const action of statusActions('card')) {
    router.post(`/cards/:id/${action}`, allow('admin'), async (req, res) => {
      const { reason } = parse(reasonBody, req.body);
      res.json(await view(await changeStatus(db, callerOf(req), 'card', action, idParam(req, 'id', 'card'), reason)));
    });
  }

  // Per member: a member token by its member, an app by the member it binds for (one app serves many).
  const bindSubject = (req: Request) => {
    const principal = req.principal;
    if (!principal) return undefined;
    if (principal.role === 'member') return `member:${principal.memberId}`;
    const memberId = (req.body as { member_id?: unknown } | undefined)?.member_id;
    return `key:${principal.keyId}:${typeof memberId === 'string' && isUuid(memberId) ? memberId.toLowerCase() : '-'}`;
  };

  router.post('/cards/bind', allow('member', 'app'), rateLimit(deps, 'bind', config.RATE_LIMIT_BIND_PER_MIN, bindSubject), async (req, res) => {
    const principal = principalOf(req);
    const body = parse(bindBody, req.body);
    if (principal.role === 'member' && body.member_id !== undefined) throw fieldError('member_id', 'is not accepted with a member token: a member binds itself');
    if (principal.role !== 'member' && body.member_id === undefined) throw fieldError('member_id', 'is required with an app key');
    const memberId = principal.role === 'member' ? principal.memberId! : body.member_id!.toLowerCase();
    const binding = await bindCard(deps, callerOf(req), { cardNo: body.card_no, password: body.binding_password, memberId }, bindingLock);
    res.status(201).json(bindingJson(binding));
  });

  router.delete('/cards/:id/bindings/:member_id', allow('admin', 'member'), async (req, res) => {
    const removed = await unbindCard(db, callerOf(req), String(req.params.id), idParam(req, 'member_id', 'binding'));
    res.json({ ...bindingJson(removed), removed: true });
  });

  router.patch('/cards/:id/bindings/:member_id', allow('admin', 'member'), async (req, res) => {
    const { role } = parse(bindingRoleBody, req.body);
    res.json(bindingJson(await changeBindingRole(db, callerOf(req), String(req.params.id), idParam(req, 'member_id', 'binding'), role)));
  });

  router.post('/cards/:id/binding-password', allow('admin', 'member'), async (req, res) => {
    const { password } = parse(bindingPasswordBody, req.body);
    await rotateBindingPassword(db, callerOf(req), String(req.params.id), password);
    res.status(204).end();
  });

  router.post('/cards/:id/points-adjustments', allow('admin'), async (req, res) => {
    const id = idParam(req, 'id', 'card');
    const body = parse(pointsAdjustmentBody, req.body);
    const result = await adjustPoints(db, callerOf(req), id, body);
    res.status(201).json({ card_id: id, delta: body.delta, points: result.points, level: result.level });
  });

  return router;
}
