/**
 * What the served OpenAPI document adds to what @fastify/swagger generates from the routes:
 * an `operationId` for every operation, the problem answers (RFC 9457, `#/components/schemas/Problem`),
 * the `Idempotency-Key` header where the kernel honours it (http/idempotency.ts) and the schemas
 * used more than once as components. Everything is derived from method and path, so the names
 * stay the same from one start to the next and between kernels with the same routes.
 */
import { hoistSharedSchemas } from './openapi-components.js'

type Json = Record<string, unknown>
type Operation = {
  operationId?: string
  parameters?: Json[]
  requestBody?: unknown
  responses?: Record<string, Json>
  security?: unknown[]
} & Json

export interface OpenApiDocument extends Json {
  paths?: Record<string, Record<string, unknown>>
  components?: Json & { schemas?: Record<string, unknown>; parameters?: Record<string, unknown> }
  security?: unknown[]
}

const METHODS = ['get', 'put', 'post', 'delete', 'patch', 'head', 'options']
const PROBLEM_REF = { $ref: '#/components/schemas/Problem' }
const problem = (description: string) => ({
  description,
  content: { 'application/problem+json': { schema: PROBLEM_REF } },
})

/** `GET /v1/tasks/{id}/claim` → `getTasksByIdClaim`; the version prefix is left out. */
export function operationIdOf(method: string, path: string): string {
  const words = path
    .split('/')
    .filter((s) => s !== '' && s !== 'v1')
    .flatMap((s) => {
      const param = /^\{(.+)\}$/.exec(s)
      return param ? ['by', ...split(param[1]!)] : split(s)
    })
  return method.toLowerCase() + words.map((w) => w[0]!.toUpperCase() + w.slice(1)).join('')
}

function split(segment: string): string[] {
  return segment
    .replace(/([a-z0-9])([A-Z])/g, '$1 $2')
    .split(/[^A-Za-z0-9]+/)
    .filter(Boolean)
    .map((w) => w.toLowerCase())
}

/** The document as served on /openapi.json and /docs (a new object; `spec` is not changed). */
export function completeDocument(spec: OpenApiDocument): OpenApiDocument {
  const doc = structuredClone(spec)
  const secured = (doc.security ?? []).length > 0
  doc.components = {
    ...doc.components,
    parameters: {
      ...doc.components?.parameters,
      IdempotencyKey: {
        name: 'Idempotency-Key',
        in: 'header',
        required: false,
        description:
          'Makes an authenticated POST safe to retry: the first request with a key runs and its answer is kept; a retry with the same key and body gets that answer again (`Idempotent-Replayed: true`); the same key with another body is a 409.',
        schema: { type: 'string', pattern: '^[\\x21-\\x7e]{1,255}$' },
      },
    },
  }
  const taken = new Set<string>()
  for (const path of Object.keys(doc.paths ?? {}).sort()) {
    const item = doc.paths![path]!
    for (const method of METHODS) {
      const op = item[method] as Operation | undefined
      if (!op) continue
      let id = op.operationId ?? operationIdOf(method, path)
      for (let n = 2; taken.has(id); n++) id = `${op.operationId ?? operationIdOf(method, path)}${n}`
      taken.add(id)
      op.operationId = id
      // Outside /v1 (health, readiness, the signing keys) nothing asks who is calling.
      if (!op.security && !path.startsWith('/v1/')) op.security = []
      const authenticated = op.security ? op.security.length > 0 : secured
      if (method === 'post' && authenticated)
        op.parameters = [...(op.parameters ?? []), { $ref: '#/components/parameters/IdempotencyKey' }]
      op.responses = withProblems(op, path, method, authenticated)
    }
  }
  return hoistSharedSchemas(doc)
}

function withProblems(op: Operation, path: string, method: string, authenticated: boolean): Record<string, Json> {
  const responses: Record<string, Json> = { ...(op.responses ?? {}) }
  // A status the route documents itself keeps its description; its body is the problem.
  for (const [status, answer] of Object.entries(responses))
    if (/^[45]/.test(status)) responses[status] = { ...problem(String(answer.description ?? 'Problem')) }
  const add = (status: string, description: string) => {
    responses[status] ??= problem(description)
  }
  const validated = op.requestBody !== undefined || (op.parameters ?? []).some((p) => p.in !== undefined)
  add('400', validated ? 'The request is malformed or fails validation (`problems` says where).' : 'Bad request.')
  if (authenticated) {
    add('401', 'No valid credential.')
    add('403', 'The credential lacks the permission this operation needs.')
  }
  if (path.includes('{')) add('404', 'Nothing of that id is visible to the caller.')
  else if (path.startsWith('/v1/x/')) add('404', "The plugin is not installed for the caller's tenant.")
  if (method === 'post' && authenticated)
    add('409', 'A conflict, e.g. an `Idempotency-Key` reused with another body or still in progress.')
  if (op.requestBody !== undefined) {
    add('413', 'The body is larger than the limit.')
    add('415', 'The body is not JSON.')
  }
  add('429', 'Too many requests; retry after the `Retry-After` seconds.')
  add('5XX', 'The server failed; the problem has a `code` and the request id is in `X-Request-Id`.')
  return responses
}
