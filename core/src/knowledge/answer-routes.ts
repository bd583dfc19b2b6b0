import { Type } from '@sinclair/typebox'
import type { Api } from '../http/types.js'
import type { OrgTx } from '../http/route-deps.js'
import { principalOf, requirePermission } from '../http/guards.js'
import { rolesOf } from '../workflows/task-access.js'
import { ask } from './answer.js'
import { KB } from './errors.js'
import { searchBase } from './retrieval.js'
import type { KnowledgeService } from './service.js'
import { findBase } from './store.js'
import { Kb, Tags } from './route-views.js'

/** Hybrid search, cited answers (or "I don't know" with an escalation) and feedback on an answer. */
export function registerAnswerRoutes(app: Api, deps: { orgTx: OrgTx; knowledge: KnowledgeService }): void {
  const { orgTx, knowledge } = deps

  const SearchBody = Type.Object(
    {
      query: Type.String({ minLength: 1, maxLength: 2000 }),
      k: Type.Optional(Type.Integer({ minimum: 1, maximum: 50 })),
      tags: Type.Optional(Tags),
    },
    { additionalProperties: false },
  )

  app.post(
    '/knowledge/:kb/search',
    {
      preHandler: requirePermission(),
      schema: {
        tags: ['knowledge'],
        summary: 'Hybrid search over the approved documents my roles may read',
        params: Kb,
        body: SearchBody,
      },
    },
    async (request) => {
      const p = principalOf(request)
      const { query, k, tags } = request.body
      // Embedding (a model call with an AI endpoint) happens between transactions.
      const base = await orgTx(p.orgId, (tx) => findBase(tx, p.orgId, request.params.kb))
      const { vectors } = await knowledge.embed(p.orgId, base.embedding_model, [query], p.userId)
      const items = await orgTx(p.orgId, async (tx) =>
        searchBase(
          tx,
          base,
          vectors[0] as number[],
          query,
          await rolesOf(tx, p),
          k ?? 5,
          { tags },
          await knowledge.searchPath(tx),
        ),
      )
      return { items }
    },
  )

  app.post(
    '/knowledge/:kb/ask',
    {
      preHandler: requirePermission(),
      schema: {
        tags: ['knowledge'],
        summary: 'Ask a question: a cited answer from approved passages, or "I don\'t know" and an escalation',
        params: Kb,
        body: Type.Object(
          {
            question: Type.String({ minLength: 1, maxLength: 2000 }),
            k: Type.Optional(Type.Integer({ minimum: 1, maximum: 20 })),
            tags: Type.Optional(Tags),
          },
          { additionalProperties: false },
        ),
      },
    },
    async (request) => {
      const p = principalOf(request)
      const { base, roles, deps } = await orgTx(p.orgId, async (tx) => ({
        base: await findBase(tx, p.orgId, request.params.kb),
        roles: await rolesOf(tx, p),
        deps: await knowledge.deps(tx),
      }))
      return ask(
        (fn) => orgTx(p.orgId, fn),
        deps,
        base,
        { orgId: p.orgId, userId: p.userId, roles },
        request.body.question,
        {
          k: request.body.k,
          filters: { tags: request.body.tags },
        },
      )
    },
  )

  app.post(
    '/knowledge/asks/:id/feedback',
    {
      preHandler: requirePermission(),
      schema: {
        tags: ['knowledge'],
        summary: 'Say whether an answer helped',
        params: Type.Object({ id: Type.String({ format: 'uuid' }) }),
        body: Type.Object({ helpful: Type.Boolean() }, { additionalProperties: false }),
      },
    },
    async (request, reply) => {
      const p = principalOf(request)
      const rows = await orgTx(p.orgId, (tx) =>
        tx.sql('update knowledge_asks set helpful = ? where id = ?::uuid and asked_by = ?::uuid returning id', [
          request.body.helpful,
          request.params.id,
          p.userId,
        ]),
      )
      if (rows.length === 0) throw KB.DOCUMENT_NOT_FOUND({ id: request.params.id })
      return reply.code(204).send()
    },
  )
}
