import type { NextFunction, Request, Response } from 'express';
import type { Deps } from '../../app/deps.js';
import { AppError } from '../../domain/errors.js';
import { roleOfKey, sha256, type KeyRole } from '../../domain/tokens.js';
import type { Principal } from '../context.js';
import { findActiveKeyByHash, touchApiKey, type ActiveKeyRow } from '../../db/queries/api-keys.js';

interface CacheEntry {
  principal: Principal | null;
  until: number;
}

/**
 * Authenticates `Authorization: Bearer <key>`. Keys are looked up by SHA-256 (a unique index, so
 * the lookup itself is the constant-time comparison), and cached for AUTH_CACHE_TTL_MS to keep
 * the hot payment path at one database round trip less.
 */
export function authenticate(deps: Pick<Deps, 'db' | 'config'>) {
  const cache = new Map<string, CacheEntry>();
  return async (req: Request, _res: Response, next: NextFunction) => {
    const header = req.get('authorization') ?? '';
    const match = /^Bearer ([A-Za-z0-9_-]{10,200})$/.exec(header);
    const key = match?.[1];
    if (!key || !roleOfKey(key)) return next(new AppError('UNAUTHENTICATED', 'Missing or unknown API key'));
    const hash = sha256(key);
    const now = Date.now();
    let entry = cache.get(hash);
    if (!entry || entry.until <= now) {
      const row = await findActiveKeyByHash(deps.db, hash);
      if (row && isStale(row.last_used_at)) {
        // Best effort and off the request's path: a failed note of use must not fail the request.
        touchApiKey(deps.db, row.id).catch(() => undefined);
      }
      entry = {
        principal: row && row.member_status !== 'erased' ? toPrincipal(row) : null,
        until: now + deps.config.AUTH_CACHE_TTL_MS,
      };
      if (deps.config.AUTH_CACHE_TTL_MS > 0) {
        if (cache.size > 10_000) cache.clear();
        cache.set(hash, entry);
      }
    }
    // Expiry was judged by Postgres in the lookup; a cached answer lives at most AUTH_CACHE_TTL_MS.
    if (!entry.principal) {
      return next(new AppError('UNAUTHENTICATED', 'Missing or unknown API key'));
    }
    req.principal = entry.principal;
    // Suspended means stopped: a member's tokens do nothing; a merchant's keys still read its history.
    if (entry.principal.suspended === 'member') return next(new AppError('MEMBER_SUSPENDED', 'This member is suspended', undefined, false, 403));
    if (entry.principal.suspended === 'merchant' && !READS.has(req.method)) {
      return next(new AppError('MERCHANT_SUSPENDED', 'This merchant is suspended: its keys may only read', undefined, false, 403));
    }
    next();
  };
}

const READS = new Set(['GET', 'HEAD', 'OPTIONS']);
const isStale = (lastUsed: Date | null | undefined) => !lastUsed || Date.now() - lastUsed.getTime() > 60_000;

function toPrincipal(row: ActiveKeyRow): Principal {
  const role = row.role;
  const scope = role === 'merchant' ? `merchant:${row.merchant_id}` : role === 'member' ? `member:${row.member_id}` : `key:${row.id}`;
  const suspended = row.merchant_status === 'suspended' ? 'merchant' : row.member_status === 'suspended' ? 'member' : undefined;
  return { keyId: row.id, role, merchantId: row.merchant_id, memberId: row.member_id, scope, ...(suspended ? { suspended } : {}) };
}

/** Route guard: the caller's role must be one of `roles`, else 403. */
export function allow(...roles: KeyRole[]) {
  return (req: Request, _res: Response, next: NextFunction) => {
    if (!req.principal) return next(new AppError('UNAUTHENTICATED', 'Missing or unknown API key'));
    if (!roles.includes(req.principal.role)) return next(new AppError('FORBIDDEN', `This route is for ${roles.join(', ')} keys`));
    next();
  };
}

/** The authenticated principal; routes behind `authenticate` always have one. */
export function principalOf(req: Request): Principal {
  if (!req.principal) throw new AppError('UNAUTHENTICATED', 'Missing or unknown API key');
  return req.principal;
}
