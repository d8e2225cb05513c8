import type { Request, Router } from 'express';
import { match } from 'path-to-regexp';

type Layer = { route?: { path: string; methods: Record<string, boolean> }; handle?: { stack?: Layer[] } };

/**
 * The route patterns of a router and the routers mounted in it at its root, so that a request
 * refused before routing (401, 429) is still counted under the route it was meant for rather
 * than under "unmatched", while unknown paths stay one label.
 */
export function routeNamer(router: Router, prefix: string): (req: Request) => string | undefined {
  let routes: { method: string; pattern: string; test: (path: string) => unknown }[] | undefined;
  const collect = (stack: Layer[]) => {
    for (const layer of stack) {
      if (layer.route) {
        const pattern = `${prefix}${layer.route.path}`;
        for (const method of Object.keys(layer.route.methods)) routes!.push({ method: method.toUpperCase(), pattern, test: match(pattern, { decode: false }) });
      } else if (layer.handle?.stack) collect(layer.handle.stack);
    }
  };
  return (req) => {
    // Read on first use: the routes are mounted after this namer is made.
    if (!routes) {
      routes = [];
      collect((router as unknown as { stack: Layer[] }).stack);
    }
    const path = req.originalUrl.split('?')[0]!;
    return routes.find((r) => r.method === req.method && r.test(path))?.pattern;
  };
}
