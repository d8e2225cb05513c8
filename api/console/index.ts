import { readFileSync } from 'node:fs';
import { Router, type NextFunction, type Request, type Response } from 'express';
import type { Deps } from '../../app/deps.js';
import { findActiveKeyByHash } from '../../db/queries/api-keys.js';
import { roleOfKey, sha256 } from '../../domain/tokens.js';
import { basicCredentials } from '../basic-auth.js';

export const CONSOLE_PATH = '/console';

/** The page loads its own script and style sheet and calls its own API: nothing inline, no other host. */
export const CONSOLE_CSP = {
  defaultSrc: ["'none'"],
  scriptSrc: ["'self'"],
  styleSrc: ["'self'"],
  imgSrc: ["'self'"],
  connectSrc: ["'self'"],
  baseUri: ["'none'"],
  formAction: ["'none'"],
  frameAncestors: ["'none'"],
};

/** The JSON routes the page reads (GET only); every other path under /console/v1 is 404. */
const READABLE = [/^\/merchant\/reports\/daily(\.csv)?$/, /^\/reports\/daily(\.csv)?$/, /^\/merchant\/transactions$/, /^\/transactions$/, /^\/risk\/alerts$/];

const USERS = { admin: 'admin', merchant: 'merchant' } as const;

/**
 * The console (API.md "Directory, keys and reports"): /console is one HTML page behind HTTP Basic,
 * user `admin` with an admin key (the platform) or user `merchant` with a merchant key (its own
 * shop). Its script reads the JSON API at /console/v1/…: the same /v1 router, with the Basic
 * password handed on as the Bearer key, so the page sees exactly what that key sees on /v1 (roles,
 * tenants, rate limits, validation), and the key never reaches the page's script. Only a few GET
 * routes are reachable that way, and never from another site: credentials a browser keeps for
 * Basic are sent along with any request to this origin.
 */
export function consoleRoutes(deps: Pick<Deps, 'db'>, v1: Router): Router {
  const asset = (name: string) => readFileSync(new URL(`./assets/${name}`, import.meta.url), 'utf8');
  const page = asset('console.html');
  const script = asset('console.js');
  const styles = asset('console.css');
  const router = Router();

  router.get(`${CONSOLE_PATH}/assets/console.js`, (_req, res) => {
    res.type('text/javascript').setHeader('Cache-Control', 'no-cache');
    res.send(script);
  });
  router.get(`${CONSOLE_PATH}/assets/console.css`, (_req, res) => {
    res.type('text/css').setHeader('Cache-Control', 'no-cache');
    res.send(styles);
  });
  router.get(CONSOLE_PATH, consoleBasicAuth(deps), (_req, res) => {
    res.type('html').setHeader('Cache-Control', 'no-store');
    res.send(page.replace('%ROLE%', String(res.locals.consoleRole)));
  });
  router.use(`${CONSOLE_PATH}/v1`, readOnlyBridge, consoleBasicAuth(deps), bearerFromBasic, v1);
  return router;
}

function refuse(res: Response, req: Request, status: number, code: string, message: string) {
  res.status(status).json({ error: { code, message, details: {}, request_id: req.id } });
}

/** Only the page's reads, only from this origin. */
function readOnlyBridge(req: Request, res: Response, next: NextFunction) {
  const site = req.get('sec-fetch-site');
  if (site !== undefined && site !== 'same-origin' && site !== 'none') return refuse(res, req, 403, 'FORBIDDEN', 'The console API answers the console page only');
  const reads = req.method === 'GET' || req.method === 'HEAD';
  if (!reads || !READABLE.some((r) => r.test(req.path))) return refuse(res, req, 404, 'NOT_FOUND', `No console route ${req.method} ${req.baseUrl}${req.path}: the console only reads its reports, transactions and alerts`);
  next();
}

/** User `admin` with an active admin key, or `merchant` with an active merchant key; else 401 with a Basic challenge. */
function consoleBasicAuth(deps: Pick<Deps, 'db'>) {
  return async (req: Request, res: Response, next: NextFunction) => {
    const credentials = basicCredentials(req);
    const user = credentials && Object.hasOwn(USERS, credentials.user) ? USERS[credentials.user as keyof typeof USERS] : undefined;
    // The key's prefix names its role: a mismatch needs no database lookup.
    const key = user && roleOfKey(credentials!.password) === user ? await findActiveKeyByHash(deps.db, sha256(credentials!.password)) : undefined;
    if (key && key.role === user) {
      res.locals.consoleRole = user;
      return next();
    }
    res.setHeader('WWW-Authenticate', 'Basic realm="MPS console", charset="UTF-8"');
    refuse(res, req, 401, 'UNAUTHENTICATED', 'The console needs user "admin" with an admin API key, or user "merchant" with a merchant API key, as password');
  };
}

function bearerFromBasic(req: Request, _res: Response, next: NextFunction) {
  req.headers.authorization = `Bearer ${basicCredentials(req)!.password}`;
  next();
}
