import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { TemplatedApp, WebSocketBehavior } from 'uWebSockets.js';
import { AppError } from './errors.js';
import { authenticate, authRoutes } from './http/auth.js';
import type { HttpDeps } from './http/deps.js';
import { messageRoutes } from './http/messages.js';
import { buildOpenApi } from './http/openapi.js';
import { captureRequest, readJson, send, sendError, sendPreflight, type HttpContext, type RespondOptions } from './http/respond.js';
import type { RouteDef } from './http/route.js';
import { roomRoutes } from './http/rooms.js';
import { systemRoutes } from './http/system.js';
import { metrics } from './metrics.js';
import { projectRoot } from './paths.js';
import { uws } from './uws.js';

const version = (JSON.parse(readFileSync(join(projectRoot, 'package.json'), 'utf8')) as { version: string }).version;

/**
 * The uWS app with every HTTP route and the WebSocket endpoint, not yet listening
 * (the worker and the tests both build it, then listen).
 */
export function buildApp(deps: HttpDeps, ws?: WebSocketBehavior<any>): TemplatedApp {
  const respondOpts: RespondOptions = { corsOrigin: deps.config.corsOrigin, trustProxy: deps.config.trustProxy, log: deps.log };
  const routes: RouteDef[] = [...authRoutes(deps), ...roomRoutes(deps), ...messageRoutes(deps)];
  let openapi: Record<string, unknown> | undefined;
  const system = systemRoutes(deps, () => (openapi ??= buildOpenApi([...routes, ...system], version)));
  routes.push(...system);

  const app = uws.App();
  if (ws) app.ws('/ws', ws);
  for (const route of routes) {
    const paramCount = (route.path.match(/:/g) ?? []).length;
    app[route.method](route.path, (res, req) => {
      void handle(route, captureRequest(res, req, paramCount, respondOpts));
    });
  }
  app.options('/*', (res) => sendPreflight(res, deps.config.corsOrigin));
  app.any('/*', (res, req) => {
    sendError(captureRequest(res, req, 0, respondOpts), new AppError('not_found', `Cannot ${req.getMethod().toUpperCase()} ${req.getUrl()}`), respondOpts);
  });

  async function handle(route: RouteDef, ctx: HttpContext): Promise<void> {
    let status = 500;
    try {
      // Both run before the first await: the body must be subscribed to synchronously.
      const user = route.auth ? authenticate(deps, ctx.authorization) : null;
      const body = route.body ? await readJson(ctx, deps.config.maxBodyBytes) : undefined;
      const reply = await route.handle(ctx, { body, user });
      status = reply.status;
      send(ctx, reply, respondOpts);
    } catch (err) {
      status = err instanceof AppError ? err.status : 500;
      sendError(ctx, err, respondOpts);
    } finally {
      metrics.httpRequests.inc({ route: route.path, status });
    }
  }

  return app;
}
