import { randomUUID } from 'node:crypto';
import type { NextFunction, Request, Response } from 'express';
import type { Deps } from '../../app/deps.js';

const CLIENT_REQUEST_ID = /^[A-Za-z0-9._:-]{1,100}$/;

/**
 * Gives every request an id (the client's X-Request-Id when it is sane), logs it, and counts it by
 * route; `routeOf` names the route of a request answered before routing (e.g. a 401).
 */
export function requestContext(deps: Pick<Deps, 'logger' | 'metrics'>, routeOf: (req: Request) => string | undefined = () => undefined) {
  return (req: Request, res: Response, next: NextFunction) => {
    const started = process.hrtime.bigint();
    const incoming = req.get('x-request-id');
    req.id = incoming && CLIENT_REQUEST_ID.test(incoming) ? incoming : `req_${randomUUID()}`;
    res.setHeader('X-Request-Id', req.id);
    res.on('finish', () => {
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      // The route pattern, not the path, so that ids do not explode the label space.
      const route = req.route?.path ? `${req.baseUrl}${req.route.path}` : (routeOf(req) ?? 'unmatched');
      deps.metrics.httpRequests.inc({ method: req.method, route, status: String(res.statusCode) });
      deps.metrics.httpDuration.observe({ method: req.method, route }, seconds);
      deps.logger.info(
        { request_id: req.id, method: req.method, route, status: res.statusCode, ms: Math.round(seconds * 1e4) / 10, key_id: req.principal?.keyId },
        'request',
      );
    });
    next();
  };
}
