import { KERNEL_PERMISSIONS as P } from '../identity/permissions.js'
import { Type } from '@sinclair/typebox'
import type { Api } from '../http/types.js'
import type { OrgTx } from '../http/route-deps.js'
import { auditMeta, principalOf, requirePermission } from '../http/guards.js'
import { appendAudit } from '../audit/audit-log.js'
import { rolesOf } from '../workflows/task-access.js'
import { KB } from './errors.js'
import type { KnowledgeService } from './service.js'

/** Questions the knowledge could not answer: the escalation inbox of the base's support role, and resolving one. */
export function registerEscalationRoutes(app: Api, deps: { orgTx: OrgTx; knowledge: KnowledgeService }): void {
  const { orgTx } = deps

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
