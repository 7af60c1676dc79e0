import { errorCodes } from '../errors.js';
import type { RouteDef } from './route.js';
import { errorSchema } from './schemas.js';

/** OpenAPI 3.1 generated from the route table and its ajv schemas. */
export function buildOpenApi(routes: RouteDef[], version: string): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const r of routes) {
    const path = r.path.replace(/:(\w+)/g, '{$1}');
    const method = r.method === 'del' ? 'delete' : r.method;
    const params: unknown[] = [...r.path.matchAll(/:(\w+)/g)].map((m) => ({
      name: m[1],
      in: 'path',
      required: true,
      schema: { type: 'string', format: 'uuid' },
    }));
    for (const [name, schema] of Object.entries(r.query ?? {})) params.push({ name, in: 'query', required: false, schema });
    const responses: Record<string, unknown> = {};
    for (const [status, res] of Object.entries(r.responses)) {
      responses[status] = res.schema
        ? { description: res.description, content: { 'application/json': { schema: res.schema } } }
        : { description: res.description };
    }
    const statuses = new Set((r.errors ?? []).map((c) => errorCodes[c as keyof typeof errorCodes]?.status).filter(Boolean));
    if (r.body) statuses.add(400).add(413);
    if (r.auth) statuses.add(401);
    for (const status of statuses) {
      const codes = (r.errors ?? []).filter((c) => errorCodes[c as keyof typeof errorCodes]?.status === status);
      responses[String(status)] = {
        description: codes.length ? `Error; code: ${codes.join(', ')}` : 'Error',
        content: { 'application/json': { schema: errorSchema } },
      };
    }
    paths[path] ??= {};
    paths[path][method] = {
      summary: r.summary,
      tags: [r.tag],
      ...(params.length ? { parameters: params } : {}),
      ...(r.body ? { requestBody: { required: true, content: { 'application/json': { schema: r.body } } } } : {}),
      responses,
      ...(r.auth ? { security: [{ bearer: [] }] } : {}),
    };
  }
  return {
    openapi: '3.1.0',
    info: { title: 'pgchat', version, description: 'HTTP API of pgchat. The WebSocket protocol is described in docs/protocol.md.' },
    components: {
      securitySchemes: { bearer: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' } },
      schemas: { Error: errorSchema },
    },
    paths,
  };
}
