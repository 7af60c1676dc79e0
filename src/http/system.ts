import type { HttpDeps } from './deps.js';
import type { RouteDef } from './route.js';

export function systemRoutes(deps: HttpDeps, openapi: () => unknown): RouteDef[] {
  return [
    {
      method: 'get',
      path: '/health',
      tag: 'system',
      summary: 'Liveness: the process serves requests',
      auth: false,
      responses: { 200: { description: 'Alive' } },
      async handle() {
        return { status: 200, body: { status: 'ok' } };
      },
    },
    {
      method: 'get',
      path: '/ready',
      tag: 'system',
      summary: 'Readiness: the database answers and the LISTEN connection is up (503 otherwise)',
      auth: false,
      responses: { 200: { description: 'Ready' }, 503: { description: 'Not ready' } },
      async handle() {
        const state = deps.ready();
        const ok = state.database && state.listen;
        return { status: ok ? 200 : 503, body: { status: ok ? 'ready' : 'not_ready', ...state } };
      },
    },
    {
      method: 'get',
      path: '/metrics',
      tag: 'system',
      summary: 'Prometheus metrics of all workers of this host',
      auth: false,
      responses: { 200: { description: 'Prometheus text format' } },
      async handle() {
        return { status: 200, raw: true, body: await deps.metrics(), contentType: 'text/plain; version=0.0.4; charset=utf-8' };
      },
    },
    {
      method: 'get',
      path: '/openapi.json',
      tag: 'system',
      summary: 'This API as OpenAPI 3.1',
      auth: false,
      responses: { 200: { description: 'OpenAPI document' } },
      async handle() {
        return { status: 200, body: openapi() };
      },
    },
  ];
}
