import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify'
import {
  describeSchemaProblem,
  problemOf,
  schemaProblemOf,
  TrellisError,
  type Problem as PluginProblem,
  type SchemaProblem,
} from '@trellis/plugin-sdk'
import { KRN } from '../errors.js'
import { redactUrl } from '../observability/redact.js'

/** The kernel's problem: the SDK's shape (plugins answer the same), always with its `instance`. */
export interface Problem extends PluginProblem {
  instance: string
}

export const ProblemSchema = {
  $id: 'Problem',
  type: 'object',
  description: 'RFC 9457 problem details; `code` is stable and documented in docs/errors.md.',
  properties: {
    type: { type: 'string' },
    title: { type: 'string' },
    status: { type: 'integer' },
    code: { type: 'string' },
    detail: { type: 'string' },
    instance: { type: 'string' },
    problems: {
      type: 'array',
      description:
        'For validation errors, on kernel and plugin routes alike: each problem with the part of the request (`in`), a JSON pointer to where it is, the field it is about and the values or fields allowed.',
      items: {
        type: 'object',
        properties: {
          in: { type: 'string', enum: ['body', 'querystring', 'params', 'headers'] },
          pointer: { type: 'string' },
          message: { type: 'string' },
          field: { type: 'string' },
          allowedValues: { type: 'array', items: {} },
        },
        additionalProperties: true,
      },
    },
  },
  required: ['type', 'title', 'status', 'code', 'detail'],
} as const

/**
 * `KRN_ERR_VALIDATION_FAILED` for schema issues found in one part of a request (`body`,
 * `querystring`, `params`): the detail words the first, `problems` lists each with its pointer,
 * the field it is about and the values allowed — the same for kernel routes and plugin routes.
 */
export function validationFailed(where: string, found: SchemaProblem[]): TrellisError {
  const problems = found.length ? found : [{ pointer: '', message: 'is invalid' }]
  return KRN.VALIDATION_FAILED({
    reason: describeSchemaProblem(where, problems[0]!),
    problems: problems.map((p) => ({ in: where, ...p })),
  })
}

/** Maps anything thrown by a handler or by Fastify itself to a TrellisError with a stable code. */
export function toTrellisError(err: unknown, bodyLimit = 1048576): TrellisError {
  if (err instanceof TrellisError) return err
  const e = err as FastifyError & {
    validation?: Array<{ instancePath?: string; message?: string; params?: Record<string, unknown> }>
    validationContext?: string
  }
  if (e?.validation)
    return validationFailed(
      e.validationContext ?? 'body',
      e.validation.map((i) => schemaProblemOf(i)),
    )
  switch (e?.code) {
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return KRN.MALFORMED_JSON()
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return KRN.PAYLOAD_TOO_LARGE({ limit: bodyLimit })
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return KRN.UNSUPPORTED_MEDIA_TYPE({ type: 'this' })
  }
  if (e instanceof SyntaxError && e.statusCode === 400) return KRN.MALFORMED_JSON()
  if (e?.statusCode === 429) return KRN.RATE_LIMITED({ retryAfterSeconds: 60 })
  return KRN.INTERNAL(undefined, { cause: err })
}

export function sendProblem(request: FastifyRequest, reply: FastifyReply, error: TrellisError): FastifyReply {
  // The URL as asked, less any credential put in its query string.
  const body: Problem = { ...problemOf(error), instance: redactUrl(request.url) }
  // Validation problems (pointer + message) are safe to show and worth a machine's reading.
  const problems = (error.details as { problems?: unknown } | null | undefined)?.problems
  if (Array.isArray(problems)) body.problems = problems.slice(0, 100)
  return reply.code(error.status).type('application/problem+json').send(body)
}
