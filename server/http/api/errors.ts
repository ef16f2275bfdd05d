/**
 * Every API error is `{ error, field, message }` with the status that says
 * what to fix: 400 bad body, 401/403 auth, 404, 409 conflict (naming the
 * machine that holds the value), 413 too large, 422 unknown root or group.
 */
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { InventoryError } from '../../inventory/index.js';
import { RecipeError } from '../../roots/recipe.js';
import { DiskSpaceError } from '../../roots/jobs.js';
import { RollbackError } from '../../roots/publish.js';
import type { Logger } from '../../log.js';

export interface ApiErrorBody { error: string; field: string | null; message: string }

export class ApiError extends Error {
  constructor(readonly status: number, readonly error: string, readonly field: string | null, message: string) {
    super(message);
  }
}

const STATUS: Record<InventoryError['code'], number> = {
  invalid: 400, conflict: 409, not_found: 404, unknown_reference: 422, in_use: 409,
};

/** `/hostname` -> `hostname`, `/bootFiles/efi64` -> `bootFiles.efi64`; a missing property names itself. */
function validationField(err: FastifyError): string {
  const v = err.validation?.[0];
  if (!v) return 'body';
  const path = (v.instancePath ?? '').replace(/^\//, '').replace(/\//g, '.');
  const params = v.params as { missingProperty?: string; additionalProperty?: string };
  const extra = params.missingProperty ?? params.additionalProperty;
  return [path, extra].filter(Boolean).join('.') || err.validationContext || 'body';
}

export function toErrorReply(err: unknown, logger: Logger, req: FastifyRequest): { status: number; body: ApiErrorBody } {
  if (err instanceof ApiError) return { status: err.status, body: { error: err.error, field: err.field, message: err.message } };
  if (err instanceof InventoryError) {
    return { status: STATUS[err.code], body: { error: err.code, field: err.field, message: err.message.replace(/^[^:]+: /, '') } };
  }
  // A recipe names its file and key; the disk check says how much it needs; 507: no room.
  if (err instanceof RecipeError) return { status: 400, body: { error: 'invalid', field: `recipe.${err.key}`, message: err.message } };
  if (err instanceof DiskSpaceError) return { status: 507, body: { error: 'insufficient_storage', field: 'disk', message: err.message } };
  if (err instanceof RollbackError) return { status: 409, body: { error: 'conflict', field: err.field, message: err.message } };
  const fe = err as FastifyError;
  if (fe.validation) {
    const field = validationField(fe);
    const params = fe.validation[0]?.params as { additionalProperty?: string } | undefined;
    const message = params?.additionalProperty ? `unknown field ${params.additionalProperty}` : `${field} ${fe.validation[0]?.message ?? 'is invalid'}`;
    return { status: 400, body: { error: 'invalid', field, message } };
  }
  switch (fe.code) {
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return { status: 400, body: { error: 'invalid', field: 'body', message: `the body is not valid JSON: ${fe.message}` } };
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return { status: 413, body: { error: 'too_large', field: 'body', message: fe.message } };
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return { status: 415, body: { error: 'unsupported_media_type', field: 'content-type', message: 'send application/json' } };
  }
  if (typeof fe.statusCode === 'number' && fe.statusCode >= 400 && fe.statusCode < 500) {
    return { status: fe.statusCode, body: { error: 'bad_request', field: null, message: fe.message } };
  }
  logger.error({ err, url: req.url, method: req.method }, 'api internal error');
  return { status: 500, body: { error: 'internal', field: null, message: 'internal error (logged)' } };
}

export function sendError(reply: FastifyReply, status: number, body: ApiErrorBody) {
  return reply.code(status).type('application/json').send(body);
}
