import { Type } from '@sinclair/typebox'
import type { Api } from '../http/types.js'
import type { OrgTx } from '../http/route-deps.js'
import { auditMeta, principalOf, requirePermission } from '../http/guards.js'
import { appendAudit } from '../audit/audit-log.js'
import { KERNEL_PERMISSIONS as P } from '../identity/permissions.js'
import { rolesOf } from '../workflows/task-access.js'
import { ask } from './answer.js'
import { KRN } from '../errors.js'
import { KB } from './errors.js'
import { baseMetrics, evaluateBase } from './monitoring.js'
import { DOCUMENT_FORMATS, LIMITS } from './parse.js'
import { searchBase } from './retrieval.js'
import type { KnowledgeService } from './service.js'
import {
  type BaseRow,
  createBase,
  type DocumentRow,
  findBase,
  prepareDocument,
  writeDocument,
  ownBase,
  reembedBase,
  setDocumentStatus,
} from './store.js'

const Kb = Type.Object({ kb: Type.String({ minLength: 1, maxLength: 100, description: 'Base id or slug.' }) })
const KbDoc = Type.Object({ kb: Type.String({ minLength: 1, maxLength: 100 }), id: Type.String({ format: 'uuid' }) })
const Slug = Type.String({ pattern: '^(?!bases$|escalations$|asks$)[a-z0-9][a-z0-9-]{1,62}$' })
const Tags = Type.Array(Type.String({ minLength: 1, maxLength: 100 }), { maxItems: 50 })
const Roles = Type.Array(Type.String({ minLength: 1, maxLength: 100 }), { maxItems: 50 })

function baseView(b: BaseRow, orgId: string) {
  return {
    id: b.id,
    slug: b.slug,
    name: b.name,
    description: b.description,
    shared: b.shared,
    owned: b.tenant_id === orgId,
    embeddingModel: b.embedding_model,
    embeddingDims: b.embedding_dims,
    threshold: Number(b.threshold),
    supportRole: b.support_role,
  }
}

function documentView(d: DocumentRow) {
  return {
    id: d.id,
    title: d.title,
    source: d.source,
    version: d.version,
    format: d.format,
    owner: d.owner,
    tags: d.tags,
    classification: d.classification,
    roles: d.roles,
    status: d.status,
    chunks: d.chunk_count,
    warnings: d.warnings,
    approvedBy: d.approved_by,
    approvedAt: d.approved_at,
  }
}

/**
 * Knowledge bases (the organisation's own, and its partner's shared ones read-only), their
 * documents and approval, hybrid search, cited answers with escalation, monitoring, evaluation.
 */
export function registerKnowledgeRoutes(app: Api, deps: { orgTx: OrgTx; knowledge: KnowledgeService }): void {
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

  app.post(
    '/knowledge/:kb/documents',
    {
      preHandler: requirePermission(P.knowledgeManage),
      bodyLimit: LIMITS.bytes * 2,
      schema: {
        tags: ['knowledge'],
        summary: 'Add a document (or the next version of a source) as a draft',
        params: Kb,
        body: Type.Object(
          {
            title: Type.String({ minLength: 1, maxLength: 500 }),
            source: Type.String({
              minLength: 1,
              maxLength: 1000,
              description: 'Where it comes from; versions share it.',
            }),
            format: Type.Union(DOCUMENT_FORMATS.map((f) => Type.Literal(f))),
            content: Type.String({ description: 'The text, or for a PDF its bytes in base64.' }),
            owner: Type.Optional(Type.String({ maxLength: 200 })),
            tags: Type.Optional(Tags),
            classification: Type.Optional(Type.String({ maxLength: 100 })),
            roles: Type.Optional(Roles),
          },
          { additionalProperties: false },
        ),
      },
    },
    async (request, reply) => {
      const p = principalOf(request)
      const meta = auditMeta(request)
      // Parsing and embedding happen between transactions; the write is one transaction.
      const owned = await orgTx(p.orgId, (tx) => ownBase(tx, p.orgId, request.params.kb))
      const prepared = await prepareDocument(owned, request.body, knowledge.embed, p.userId)
      const doc = await orgTx(p.orgId, async (tx) => {
        const base = await ownBase(tx, p.orgId, request.params.kb)
        if (base.embedding_model !== owned.embedding_model)
          throw KRN.CONFLICT({ reason: 'the base changed its embedding model meanwhile; upload the document again' })
        const d = await writeDocument(tx, base, request.body, prepared, p.userId, await knowledge.hasVector(tx))
        await appendAudit(tx, p.orgId, {
          ...meta,
          action: 'knowledge.document.added',
          target: { kind: 'knowledge_document', id: d.id },
          data: { kb: base.slug, source: d.source, version: d.version, chunks: d.chunk_count },
        })
        return d
      })
      return reply.code(201).send(documentView(doc))
    },
  )

  app.get(
    '/knowledge/:kb/documents',
    {
      preHandler: requirePermission(P.knowledgeManage),
      schema: { tags: ['knowledge'], summary: "A base's documents, every version and status", params: Kb },
    },
    async (request) => {
      const p = principalOf(request)
      const rows = await orgTx(p.orgId, async (tx) => {
        const base = await ownBase(tx, p.orgId, request.params.kb)
        return tx.sql<DocumentRow>('select * from knowledge_documents where kb_id = ?::uuid order by source, version', [
          base.id,
        ])
      })
      return { items: rows.map(documentView) }
    },
  )

  for (const [verb, to] of [
    ['approve', 'approved'],
    ['retire', 'retired'],
  ] as const) {
    app.post(
      `/knowledge/:kb/documents/:id/${verb}`,
      {
        preHandler: requirePermission(P.knowledgeApprove),
        schema: {
          tags: ['knowledge'],
          summary:
            verb === 'approve'
              ? 'Approve a draft: it becomes the current version and is retrieved'
              : 'Retire a document: it is never retrieved again',
          params: KbDoc,
        },
      },
      async (request) => {
        const p = principalOf(request)
        const meta = auditMeta(request)
        const doc = await orgTx(p.orgId, async (tx) => {
          const base = await ownBase(tx, p.orgId, request.params.kb)
          const d = await setDocumentStatus(tx, base, request.params.id, to, p.userId)
          await appendAudit(tx, p.orgId, {
            ...meta,
            action: `knowledge.document.${to}`,
            target: { kind: 'knowledge_document', id: d.id },
            data: { kb: base.slug, source: d.source, version: d.version },
          })
          return d
        })
        return documentView(doc)
      },
    )
  }

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
          await knowledge.hasVector(tx),
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

  app.get(
    '/knowledge/:kb/metrics',
    {
      preHandler: requirePermission(P.knowledgeManage),
      schema: {
        tags: ['knowledge'],
        summary: 'Retrieval monitoring: no-answer and escalation rates, citation coverage, top scores, feedback',
        params: Kb,
        querystring: Type.Object({ since: Type.Optional(Type.String({ format: 'date-time' })) }),
      },
    },
    async (request) => {
      const p = principalOf(request)
      return orgTx(p.orgId, async (tx) =>
        baseMetrics(tx, await findBase(tx, p.orgId, request.params.kb), request.query.since ?? null),
      )
    },
  )

  app.put(
    '/knowledge/:kb/eval-questions',
    {
      preHandler: requirePermission(P.knowledgeManage),
      schema: {
        tags: ['knowledge'],
        summary: "Replace the base's evaluation set: questions with the passage text each must find",
        params: Kb,
        body: Type.Object(
          {
            questions: Type.Array(
              Type.Object(
                {
                  question: Type.String({ minLength: 1, maxLength: 2000 }),
                  expect: Type.String({ minLength: 1, maxLength: 2000 }),
                },
                { additionalProperties: false },
              ),
              { maxItems: 1000 },
            ),
          },
          { additionalProperties: false },
        ),
      },
    },
    async (request) => {
      const p = principalOf(request)
      return orgTx(p.orgId, async (tx) => {
        const base = await ownBase(tx, p.orgId, request.params.kb)
        await tx.sql('delete from knowledge_eval_questions where kb_id = ?::uuid', [base.id])
        const { questions } = request.body
        if (questions.length)
          await tx.sql(
            `insert into knowledge_eval_questions (id, kb_id, question, expect)
             select gen_random_uuid(), ?::uuid, u.q, u.e from unnest(?::text[], ?::text[]) as u(q, e)`,
            [base.id, questions.map((q) => q.question), questions.map((q) => q.expect)],
          )
        return { questions: questions.length }
      })
    },
  )

  app.post(
    '/knowledge/:kb/evaluate',
    {
      preHandler: requirePermission(P.knowledgeManage),
      schema: {
        tags: ['knowledge'],
        summary: "Run the base's evaluation set: hit rate at k and mean reciprocal rank",
        params: Kb,
        body: Type.Optional(
          Type.Object({ k: Type.Optional(Type.Integer({ minimum: 1, maximum: 10 })) }, { additionalProperties: false }),
        ),
      },
    },
    async (request) => {
      const p = principalOf(request)
      const { base, deps, roles } = await orgTx(p.orgId, async (tx) => ({
        base: await ownBase(tx, p.orgId, request.params.kb),
        deps: await knowledge.deps(tx),
        roles: await rolesOf(tx, p),
      }))
      return evaluateBase((fn) => orgTx(p.orgId, fn), deps, base, p.orgId, roles, request.body?.k ?? 3)
    },
  )

  app.get(
    '/knowledge/escalations',
    {
      preHandler: requirePermission(),
      schema: {
        tags: ['knowledge'],
        summary: 'Questions the knowledge could not answer, for my roles (all of them with knowledge.manage)',
        querystring: Type.Object({
          status: Type.Optional(Type.Union([Type.Literal('open'), Type.Literal('resolved')])),
        }),
      },
    },
    async (request) => {
      const p = principalOf(request)
      const rows = await orgTx(p.orgId, async (tx) =>
        tx.sql(
          `select id, kb_id as "kbId", question, role, closest, status, resolution, created_at as "createdAt"
             from knowledge_escalations
            where status = ? and (?::boolean or role = any(?::text[]))
            order by id limit 200`,
          [request.query.status ?? 'open', p.permissions.has(P.knowledgeManage), await rolesOf(tx, p)],
        ),
      )
      return { items: rows }
    },
  )

  app.post(
    '/knowledge/escalations/:id/resolve',
    {
      preHandler: requirePermission(),
      schema: {
        tags: ['knowledge'],
        summary:
          'Answer an escalated question (the answer is for the asker; add a document so the base knows next time)',
        params: Type.Object({ id: Type.String({ format: 'uuid' }) }),
        body: Type.Object(
          { resolution: Type.String({ minLength: 1, maxLength: 10000 }) },
          { additionalProperties: false },
        ),
      },
    },
    async (request) => {
      const p = principalOf(request)
      const meta = auditMeta(request)
      return orgTx(p.orgId, async (tx) => {
        const roles = await rolesOf(tx, p)
        const [row] = await tx.sql<{ id: string; status: string }>(
          `update knowledge_escalations set status = 'resolved', resolution = ?, resolved_by = ?::uuid, resolved_at = now()
            where id = ?::uuid and status = 'open' and (?::boolean or role = any(?::text[])) returning id, status`,
          [request.body.resolution, p.userId, request.params.id, p.permissions.has(P.knowledgeManage), roles],
        )
        if (!row) throw KB.ESCALATION_NOT_FOUND({ id: request.params.id })
        await appendAudit(tx, p.orgId, {
          ...meta,
          action: 'knowledge.escalation.resolved',
          target: { kind: 'knowledge_escalation', id: row.id },
        })
        return row
      })
    },
  )
}
