/**
 * Every API route is declared once, with its JSON schemas; the same
 * declaration registers it with fastify (which validates with the schemas)
 * and describes it in the OpenAPI 3.1 document at /api/v1/openapi.json.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest, RouteOptions } from 'fastify';

type Method = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
type Schema = Record<string, unknown>;

export interface ApiRoute {
  method: Method;
  url: string;
  summary: string;
  tag: string;
  body?: Schema;
  querystring?: Schema;
  params?: Schema;
  /** Schema of the success body, by status. */
  response?: Record<number, Schema>;
  bodyLimit?: number;
  handler(req: FastifyRequest, reply: FastifyReply): Promise<unknown>;
}

export const ERROR_SCHEMA: Schema = {
  type: 'object',
  required: ['error', 'field', 'message'],
  properties: { error: { type: 'string' }, field: { type: ['string', 'null'] }, message: { type: 'string' } },
};

export class ApiRoutes {
  private readonly paths: Record<string, Record<string, unknown>> = {};

  constructor(private readonly app: FastifyInstance) {}

  add(r: ApiRoute): void {
    const schema = Object.fromEntries(Object.entries({ body: r.body, querystring: r.querystring, params: r.params }).filter(([, v]) => v));
    const opts: RouteOptions = { method: r.method, url: r.url, handler: r.handler, schema };
    if (r.bodyLimit) opts.bodyLimit = r.bodyLimit;
    this.app.route(opts);
    const path = r.url.replace(/:(\w+)/g, '{$1}');
    const parameters: unknown[] = [];
    for (const [where, schema] of [['path', r.params], ['query', r.querystring]] as const) {
      const props = (schema?.properties ?? {}) as Record<string, unknown>;
      const required = new Set((schema?.required as string[] | undefined) ?? []);
      for (const [name, s] of Object.entries(props)) parameters.push({ name, in: where, required: where === 'path' || required.has(name), schema: s });
    }
    const responses: Record<string, unknown> = {};
    for (const [status, schema] of Object.entries(r.response ?? { 200: {} })) {
      responses[status] = { description: 'success', content: { 'application/json': { schema } } };
    }
    responses.default = { description: 'error', content: { 'application/json': { schema: ERROR_SCHEMA } } };
    (this.paths[path] ??= {})[r.method.toLowerCase()] = {
      summary: r.summary, tags: [r.tag], parameters,
      ...(r.body ? { requestBody: { required: true, content: { 'application/json': { schema: r.body } } } } : {}),
      responses,
      security: [{ bearer: [] }],
    };
  }

  document(version: string): Record<string, unknown> {
    return {
      openapi: '3.1.0',
      info: { title: 'Sidereal admin API', version, description: 'Machines, groups, roots, discovery, explain, boot events and audit. Bearer tokens from `sidereal token create`; writes need role admin.' },
      servers: [{ url: '/' }],
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
      paths: this.paths,
    };
  }
}
