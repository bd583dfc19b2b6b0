import { Type } from '@sinclair/typebox'
import type { Api } from '../http/types.js'
import type { OrgTx } from '../http/route-deps.js'
import { auditMeta, requirePermission } from '../http/guards.js'
import { KERNEL_PERMISSIONS as P } from '../identity/permissions.js'
import { tenantGovernor } from './tenant-governor.js'
import { auditErasure, eraseSubject, listErasures, type ErasureDeps } from './erasure.js'
import { GOV } from './errors.js'

export interface ErasureRouteDeps extends ErasureDeps {
  orgTx: OrgTx
  /** Seals the tenant's pending audit entries first, so their payloads can be erased too. */
  seal: (tenantId: string) => Promise<unknown>
}

const Report = Type.Object({
  id: Type.String(),
  subjectKind: Type.String(),
  at: Type.String({ format: 'date-time' }),
  requestedBy: Type.String(),
  plugins: Type.Array(
    Type.Object({
      plugin: Type.String(),
      collection: Type.String(),
      subjectField: Type.String(),
      records: Type.Array(Type.String(), { description: 'Ids of the records whose personal fields were erased' }),
      fields: Type.Array(Type.String(), { description: 'The personal and sensitive-personal fields erased' }),
    }),
  ),
  kernel: Type.Object({
    invocationLogs: Type.Integer({ description: 'Invocations whose input, transcript and logs were erased' }),
    aiInteractions: Type.Integer({ description: 'AI records whose prompt, answer and retrieved text were erased' }),
    eventPayloads: Type.Optional(
      Type.Integer({ description: 'Outbox events whose payload was emptied (absent from older reports)' }),
    ),
    webhookAttempts: Type.Optional(
      Type.Integer({ description: 'Webhook attempts whose stored response and error were cleared' }),
    ),
    auditPayloads: Type.Integer({ description: 'Audit entries whose payload was erased (the chain still verifies)' }),
    auditUnsealed: Type.Integer({ description: 'Matching audit entries not sealed yet, left as they are' }),
  }),
})

/** Right to erasure: erase a data subject across the tenant's plugins, and read the reports. */
export function registerErasureRoutes(app: Api, deps: ErasureRouteDeps): void {
  app.post(
    '/governance/erasures',
    {
      preHandler: requirePermission(P.governanceManage),
      schema: {
        tags: ['governance'],
        summary: 'Erase a data subject across every installed plugin that declares that kind of subject',
        body: Type.Object(
          {
            subjectKind: Type.String({ pattern: '^[a-z][a-z0-9-]{0,63}$' }),
            identifier: Type.String({
              minLength: 1,
              maxLength: 1000,
              description: 'The value of the identifying field',
            }),
          },
          { additionalProperties: false },
        ),
        response: { 201: Report },
      },
    },
    async (request, reply) => {
      const p = tenantGovernor(request)
      const { subjectKind, identifier } = request.body as { subjectKind: string; identifier: string }
      await deps.seal(p.orgId)
      const report = await deps.orgTx(p.orgId, async (tx) => {
        const r = await eraseSubject(tx, deps, { kind: subjectKind, identifier }, p)
        await auditErasure(tx, p.orgId, r, auditMeta(request))
        return r
      })
      return reply.code(201).send(report)
    },
  )

  app.get(
    '/governance/erasures',
    {
      preHandler: requirePermission(P.governanceManage),
      schema: {
        tags: ['governance'],
        summary: "Your tenant's erasure reports, newest first",
        response: { 200: Type.Object({ items: Type.Array(Report) }) },
      },
    },
    async (request) => {
      const p = tenantGovernor(request)
      return { items: await deps.orgTx(p.orgId, (tx) => listErasures(tx)) }
    },
  )

  app.get(
    '/governance/erasures/:id',
    {
      preHandler: requirePermission(P.governanceManage),
      schema: {
        tags: ['governance'],
        summary: 'One erasure report',
        params: Type.Object({ id: Type.String({ format: 'uuid' }) }),
        response: { 200: Report },
      },
    },
    async (request) => {
      const p = tenantGovernor(request)
      const { id } = request.params as { id: string }
      const [r] = await deps.orgTx(p.orgId, (tx) => listErasures(tx, id))
      if (!r) throw GOV.ERASURE_NOT_FOUND({ id })
      return r
    },
  )
}
