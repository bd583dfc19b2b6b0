import { Type } from '@sinclair/typebox'
import type { Api } from '../http/types.js'
import type { OrgTx } from '../http/route-deps.js'
import { appendAudit } from '../audit/audit-log.js'
import { auditMeta, requirePermission } from '../http/guards.js'
import { KERNEL_PERMISSIONS as P } from '../identity/permissions.js'
import { tenantGovernor } from './tenant-governor.js'
import { listLegalHolds, placeLegalHold, releaseLegalHold } from './legal-holds.js'

export interface LegalHoldRouteDeps {
  orgTx: OrgTx
}

const HoldView = Type.Object({
  id: Type.String(),
  target: Type.Union([Type.String(), Type.Null()], { description: 'null: the whole tenant' }),
  recordIds: Type.Union([Type.Array(Type.String()), Type.Null()], { description: 'null: all of the target' }),
  reason: Type.String(),
  createdBy: Type.String(),
  createdAt: Type.String({ format: 'date-time' }),
  releasedAt: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
  releasedBy: Type.Union([Type.String(), Type.Null()]),
})

/** Legal holds: placed, listed and released by a tenant admin; each act audited. */
export function registerLegalHoldRoutes(app: Api, deps: LegalHoldRouteDeps): void {
  app.post(
    '/governance/legal-holds',
    {
      preHandler: requirePermission(P.governanceManage),
      schema: {
        tags: ['governance'],
        summary: 'Suspend purging for the whole tenant, one target, or records of one target',
        body: Type.Object(
          {
            target: Type.Optional(
              Type.String({ minLength: 1, maxLength: 300, description: 'Left out: the whole tenant' }),
            ),
            recordIds: Type.Optional(
              Type.Array(Type.String({ format: 'uuid' }), {
                maxItems: 10_000,
                description: 'Left out: all of the target',
              }),
            ),
            reason: Type.String({ minLength: 1, maxLength: 2000 }),
          },
          { additionalProperties: false },
        ),
        response: { 201: HoldView },
      },
    },
    async (request, reply) => {
      const p = tenantGovernor(request)
      const body = request.body as { target?: string; recordIds?: string[]; reason: string }
      const hold = await deps.orgTx(p.orgId, async (tx) => {
        const h = await placeLegalHold(tx, body, `${p.kind}:${p.id}`)
        await appendAudit(tx, p.orgId, {
          ...auditMeta(request),
          action: 'governance.legal_hold.placed',
          target: { kind: 'legal_hold', id: h.id },
          data: { target: h.target, records: h.recordIds?.length ?? null, reason: h.reason },
        })
        return h
      })
      return reply.code(201).send(hold)
    },
  )

  app.get(
    '/governance/legal-holds',
    {
      preHandler: requirePermission(P.governanceManage),
      schema: {
        tags: ['governance'],
        summary: 'Legal holds of your tenant, newest first',
        querystring: Type.Object({ active: Type.Optional(Type.Boolean()) }),
        response: { 200: Type.Object({ items: Type.Array(HoldView) }) },
      },
    },
    async (request) => {
      const p = tenantGovernor(request)
      const { active } = request.query as { active?: boolean }
      return { items: await deps.orgTx(p.orgId, (tx) => listLegalHolds(tx, active === true)) }
    },
  )

  app.post(
    '/governance/legal-holds/:id/release',
    {
      preHandler: requirePermission(P.governanceManage),
      schema: {
        tags: ['governance'],
        summary: 'Release a legal hold: the next retention run purges what it kept',
        params: Type.Object({ id: Type.String({ format: 'uuid' }) }),
        response: { 200: HoldView },
      },
    },
    async (request) => {
      const p = tenantGovernor(request)
      const { id } = request.params as { id: string }
      return deps.orgTx(p.orgId, async (tx) => {
        const h = await releaseLegalHold(tx, id, `${p.kind}:${p.id}`)
        await appendAudit(tx, p.orgId, {
          ...auditMeta(request),
          action: 'governance.legal_hold.released',
          target: { kind: 'legal_hold', id: h.id },
          data: { target: h.target },
        })
        return h
      })
    },
  )
}
