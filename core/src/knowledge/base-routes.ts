import { KERNEL_PERMISSIONS as P } from '../identity/permissions.js'
import { Type } from '@sinclair/typebox'
import type { Api } from '../http/types.js'
import type { OrgTx } from '../http/route-deps.js'
import { auditMeta, principalOf, requirePermission } from '../http/guards.js'
import { appendAudit } from '../audit/audit-log.js'
import { KB } from './errors.js'
import type { KnowledgeService } from './service.js'
import { type BaseRow, createBase, findBase, ownBase, reembedBase } from './store.js'
import { Kb, Slug, baseView } from './route-views.js'

/** Knowledge bases: the organisation's own (created, changed, re-embedded) and its partner's shared ones, read-only. */
export function registerBaseRoutes(app: Api, deps: { orgTx: OrgTx; knowledge: KnowledgeService }): void {
  const { orgTx, knowledge } = deps

  app.post(
    '/knowledge/bases',
    {
      preHandler: requirePermission(P.knowledgeManage),
      schema: {
        tags: ['knowledge'],
        summary: 'Create a knowledge base (a partner may share it with its tenants)',
        body: Type.Object(
          {
            slug: Slug,
            name: Type.String({ minLength: 1, maxLength: 200 }),
            description: Type.Optional(Type.String({ maxLength: 2000 })),
            shared: Type.Optional(Type.Boolean({ description: "A partner's base its tenants may read." })),
            embeddingModel: Type.Optional(Type.String({ maxLength: 200 })),
            threshold: Type.Optional(Type.Number({ minimum: 0, maximum: 1 })),
            supportRole: Type.Optional(Type.Union([Type.String({ maxLength: 100 }), Type.Null()])),
          },
          { additionalProperties: false },
        ),
      },
    },
    async (request, reply) => {
      const p = principalOf(request)
      if (request.body.shared && p.orgKind !== 'partner')
        throw KB.BASE_READ_ONLY({ kb: `${request.body.slug} (only a partner shares bases)` })
      const meta = auditMeta(request)
      const base = await orgTx(p.orgId, async (tx) => {
        const b = await createBase(tx, p.orgId, request.body, p.userId)
        await appendAudit(tx, p.orgId, {
          ...meta,
          action: 'knowledge.base.created',
          target: { kind: 'knowledge_base', id: b.id },
          data: { slug: b.slug, shared: b.shared },
        })
        return b
      })
      return reply.code(201).send(baseView(base, p.orgId))
    },
  )

  app.get(
    '/knowledge/bases',
    { schema: { tags: ['knowledge'], summary: 'Knowledge bases I can ask: my own and those my partner shares' } },
    async (request) => {
      const p = principalOf(request)
      const rows = await orgTx(p.orgId, (tx) => tx.sql<BaseRow>('select * from knowledge_bases order by slug, id'))
      return { items: rows.map((b) => baseView(b, p.orgId)) }
    },
  )

  app.get(
    '/knowledge/:kb',
    { schema: { tags: ['knowledge'], summary: 'One knowledge base', params: Kb } },
    async (request) => {
      const p = principalOf(request)
      return baseView(await orgTx(p.orgId, (tx) => findBase(tx, p.orgId, request.params.kb)), p.orgId)
    },
  )

  app.patch(
    '/knowledge/:kb',
    {
      preHandler: requirePermission(P.knowledgeManage),
      schema: {
        tags: ['knowledge'],
        summary: "Change a base's threshold, support role or embedding model (re-embeds every chunk)",
        params: Kb,
        body: Type.Object(
          {
            embeddingModel: Type.Optional(Type.String({ maxLength: 200 })),
            threshold: Type.Optional(Type.Number({ minimum: 0, maximum: 1 })),
            supportRole: Type.Optional(Type.Union([Type.String({ maxLength: 100 }), Type.Null()])),
          },
          { additionalProperties: false },
        ),
      },
    },
    async (request) => {
      const p = principalOf(request)
      const meta = auditMeta(request)
      const { embeddingModel, threshold, supportRole } = request.body
      const { owned, hasVector } = await orgTx(p.orgId, async (tx) => ({
        owned: await ownBase(tx, p.orgId, request.params.kb),
        hasVector: await knowledge.hasVector(tx),
      }))
      let reembedded = 0
      if (embeddingModel !== undefined && embeddingModel !== owned.embedding_model)
        reembedded = (await reembedBase((fn) => orgTx(p.orgId, fn), owned, embeddingModel, knowledge.embed, hasVector))
          .chunks
      return orgTx(p.orgId, async (tx) => {
        const base = await ownBase(tx, p.orgId, request.params.kb)
        const [row] = await tx.sql<BaseRow>(
          'update knowledge_bases set threshold = ?, support_role = ? where id = ?::uuid returning *',
          [threshold ?? base.threshold, supportRole === undefined ? base.support_role : supportRole, base.id],
        )
        await appendAudit(tx, p.orgId, {
          ...meta,
          action: 'knowledge.base.changed',
          target: { kind: 'knowledge_base', id: base.id },
          data: { ...request.body, reembedded },
        })
        return { ...baseView(row as BaseRow, p.orgId), reembedded }
      })
    },
  )
}
