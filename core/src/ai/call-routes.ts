import { Type } from '@sinclair/typebox'
import type { Api } from '../http/types.js'
import { AUTH, KRN } from '../errors.js'
import { principalOf, requirePermission } from '../http/guards.js'
import { KERNEL_PERMISSIONS as P } from '../identity/permissions.js'
import type { AiService } from './service.js'

const Message = Type.Object(
  {
    role: Type.Union([Type.Literal('system'), Type.Literal('user'), Type.Literal('assistant')]),
    content: Type.String({ maxLength: 100_000 }),
  },
  { additionalProperties: false },
)
const Passage = Type.Object(
  {
    n: Type.Integer({ minimum: 1, maximum: 999 }),
    id: Type.String({ maxLength: 200 }),
    text: Type.String({ maxLength: 50_000 }),
    score: Type.Optional(Type.Number()),
  },
  { additionalProperties: false },
)

/**
 * A tenant's users call the governed AI directly (what the console's assistant and scripts use):
 * the same service plugins reach through `ai:complete` / `ai:embed`, with the same budgets,
 * masking, screening and records. The caller sent the text, so personal values are unmasked in
 * the answer it gets back (the model and the record saw them masked).
 */
export function registerCallRoutes(app: Api, deps: { ai: AiService }): void {
  app.post(
    '/ai/complete',
    {
      preHandler: requirePermission(P.usersRead),
      schema: {
        tags: ['ai'],
        summary: 'Ask a chat model (the tenant default unless `model` names one it is offered)',
        body: Type.Object(
          {
            model: Type.Optional(Type.String({ maxLength: 64 })),
            messages: Type.Array(Message, { minItems: 1, maxItems: 100 }),
            passages: Type.Optional(Type.Array(Passage, { maxItems: 50 })),
            maxTokens: Type.Optional(Type.Integer({ minimum: 1, maximum: 32_000 })),
            schema: Type.Optional(Type.Object({}, { additionalProperties: true })),
            temperature: Type.Optional(Type.Number({ minimum: 0, maximum: 2 })),
          },
          { additionalProperties: false },
        ),
        response: {
          200: Type.Object({
            text: Type.String(),
            model: Type.String(),
            json: Type.Optional(Type.Unknown()),
            citations: Type.Optional(Type.Array(Type.Integer())),
            escalate: Type.Optional(Type.Boolean()),
            usage: Type.Object({ inputTokens: Type.Number(), outputTokens: Type.Number() }),
            costMicros: Type.Number(),
            recordId: Type.String(),
          }),
        },
      },
    },
    async (request) => {
      const p = principalOf(request)
      if (p.orgKind !== 'tenant') throw AUTH.FORBIDDEN({ permission: P.usersRead })
      const b = request.body
      if (b.passages && new Set(b.passages.map((x) => x.n)).size !== b.passages.length)
        throw KRN.VALIDATION_FAILED({ reason: 'passage numbers must be distinct' })
      return deps.ai.complete(
        { tenantId: p.orgId, userId: p.userId, feature: 'api.complete', mayReadPersonal: true },
        b,
      )
    },
  )

  app.post(
    '/ai/embed',
    {
      preHandler: requirePermission(P.usersRead),
      schema: {
        tags: ['ai'],
        summary: 'Embed texts with the tenant\u2019s embedding model (lexical for the local default)',
        body: Type.Object(
          {
            model: Type.Optional(Type.String({ maxLength: 64 })),
            texts: Type.Array(Type.String({ maxLength: 20_000 }), { minItems: 1, maxItems: 256 }),
          },
          { additionalProperties: false },
        ),
        response: {
          200: Type.Object({
            vectors: Type.Array(Type.Array(Type.Number())),
            model: Type.String(),
            dims: Type.Number(),
            lexical: Type.Boolean(),
            recordId: Type.Optional(Type.String()),
          }),
        },
      },
    },
    async (request) => {
      const p = principalOf(request)
      if (p.orgKind !== 'tenant') throw AUTH.FORBIDDEN({ permission: P.usersRead })
      return deps.ai.embed({ tenantId: p.orgId, userId: p.userId, feature: 'api.embed' }, request.body.texts, {
        model: request.body.model,
      })
    },
  )
}
