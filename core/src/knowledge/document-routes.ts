import { KERNEL_PERMISSIONS as P } from '../identity/permissions.js'
import { Type } from '@sinclair/typebox'
import type { Api } from '../http/types.js'
import type { OrgTx } from '../http/route-deps.js'
import { auditMeta, principalOf, requirePermission } from '../http/guards.js'
import { appendAudit } from '../audit/audit-log.js'
import { KRN } from '../errors.js'
import { DOCUMENT_FORMATS, LIMITS } from './parse.js'
import type { KnowledgeService } from './service.js'
import { type DocumentRow, prepareDocument, writeDocument, ownBase, setDocumentStatus } from './store.js'
import { Kb, KbDoc, Tags, Roles, documentView } from './route-views.js'

/** A base's documents: added as drafts, listed, approved (then retrieved) and retired. */
export function registerDocumentRoutes(app: Api, deps: { orgTx: OrgTx; knowledge: KnowledgeService }): void {
  const { orgTx, knowledge } = deps

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
}
