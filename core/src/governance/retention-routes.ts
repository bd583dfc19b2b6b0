import { Type } from '@sinclair/typebox'
import type { FastifyRequest } from 'fastify'
import type { Api } from '../http/types.js'
import type { OrgTx } from '../http/route-deps.js'
import { AUTH } from '../errors.js'
import { appendAudit } from '../audit/audit-log.js'
import { PLATFORM_ORG } from '../db/database.js'
import { auditMeta, principalOf, requirePermission } from '../http/guards.js'
import { KERNEL_PERMISSIONS as P } from '../identity/permissions.js'
import { tenantGovernor } from './tenant-governor.js'
import { listRetentionRuns } from './retention-job.js'
import { retentionBounds, setRetentionBounds, setTenantRetention, tenantRetention } from './retention-policies.js'

export interface RetentionRouteDeps {
  orgTx: OrgTx
}

// Request bodies name no null: the API's coercion would read 0 as null. A bound left out is no bound.
const BoundsIn = {
  minDays: Type.Optional(Type.Integer({ minimum: 0, maximum: 36_500, description: 'Fewest days a tenant must keep' })),
  maxDays: Type.Optional(Type.Integer({ minimum: 1, maximum: 36_500, description: 'Most days a tenant may keep' })),
  defaultDays: Type.Optional(
    Type.Integer({ minimum: 1, maximum: 36_500, description: 'Applied when the tenant sets nothing' }),
  ),
}
const Bounds = {
  minDays: Type.Union([Type.Integer({ minimum: 0, maximum: 36_500 }), Type.Null()], {
    description: 'Fewest days a tenant must keep (null: no floor)',
  }),
  maxDays: Type.Union([Type.Integer({ minimum: 1, maximum: 36_500 }), Type.Null()], {
    description: 'Most days a tenant may keep (null: no ceiling)',
  }),
  defaultDays: Type.Union([Type.Integer({ minimum: 1, maximum: 36_500 }), Type.Null()], {
    description: 'Applied when the tenant sets nothing (null: keep)',
  }),
}
const TargetView = Type.Object({
  target: Type.String({ description: 'A kernel record kind or <plugin>/<collection>' }),
  ...Bounds,
  days: Type.Union([Type.Integer(), Type.Null()], { description: "The tenant's own days (null: none set)" }),
  effectiveDays: Type.Union([Type.Integer(), Type.Null()], {
    description: 'What the retention job applies (null: nothing is purged)',
  }),
})
const RunView = Type.Object({
  id: Type.String(),
  ranAt: Type.String({ format: 'date-time' }),
  asOf: Type.String({ format: 'date-time' }),
  purged: Type.Record(Type.String(), Type.Integer()),
  held: Type.Record(Type.String(), Type.Integer()),
  total: Type.Integer(),
})

const actorOf = (request: FastifyRequest) => {
  const p = principalOf(request)
  return `${p.kind}:${p.id}`
}

/**
 * Retention: a tenant admin reads and sets its days per target within the platform's bounds and
 * reads what each run purged; a platform admin sets the bounds. Every change is audited.
 */
export function registerRetentionRoutes(app: Api, deps: RetentionRouteDeps): void {
  app.get(
    '/governance/retention',
    {
      preHandler: requirePermission(P.governanceManage),
      schema: {
        tags: ['governance'],
        summary: "Retention of every target of your tenant: the platform's bounds, your days, what applies",
        response: { 200: Type.Object({ items: Type.Array(TargetView) }) },
      },
    },
    async (request) => {
      const p = tenantGovernor(request)
      const items = await deps.orgTx(p.orgId, (tx) => tenantRetention(tx))
      return { items: items.map(({ ref: _ref, ...view }) => view) }
    },
  )

  const change = (request: FastifyRequest, target: string, days: number | null) => {
    const p = tenantGovernor(request)
    return deps.orgTx(p.orgId, async (tx) => {
      const r = await setTenantRetention(tx, target, days, actorOf(request))
      await appendAudit(tx, p.orgId, {
        ...auditMeta(request),
        action: 'governance.retention.changed',
        target: { kind: 'retention_target', id: target },
        data: { days, effectiveDays: r.effectiveDays },
      })
      return r
    })
  }

  app.put(
    '/governance/retention',
    {
      preHandler: requirePermission(P.governanceManage),
      schema: {
        tags: ['governance'],
        summary: 'Set your retention of one target (days), within the platform bounds',
        body: Type.Object(
          {
            target: Type.String({ minLength: 1, maxLength: 300 }),
            days: Type.Integer({ minimum: 1, maximum: 36_500 }),
          },
          { additionalProperties: false },
        ),
        response: { 200: TargetView },
      },
    },
    async (request) => {
      const { target, days } = request.body as { target: string; days: number }
      return change(request, target, days)
    },
  )

  app.delete(
    '/governance/retention',
    {
      preHandler: requirePermission(P.governanceManage),
      schema: {
        tags: ['governance'],
        summary: "Clear your retention of one target: the platform's default applies again",
        querystring: Type.Object({ target: Type.String({ minLength: 1, maxLength: 300 }) }),
        response: { 200: TargetView },
      },
    },
    async (request) => change(request, (request.query as { target: string }).target, null),
  )

  app.get(
    '/governance/retention/runs',
    {
      preHandler: requirePermission(P.governanceManage),
      schema: {
        tags: ['governance'],
        summary: 'What the retention job purged and what legal holds kept, newest run first',
        querystring: Type.Object({
          limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 200, default: 50 })),
          before: Type.Optional(Type.String({ format: 'uuid' })),
        }),
        response: { 200: Type.Object({ items: Type.Array(RunView) }) },
      },
    },
    async (request) => {
      const p = tenantGovernor(request)
      const q = request.query as { limit?: number; before?: string }
      const runs = await deps.orgTx(p.orgId, (tx) => listRetentionRuns(tx, q.limit ?? 50, q.before))
      return { items: runs.map(({ tenantId: _t, ...r }) => r) }
    },
  )

  const platformOnly = (request: FastifyRequest) => {
    const p = principalOf(request)
    if (p.orgKind !== 'platform') throw AUTH.FORBIDDEN({ permission: P.platformAdmin })
    return p
  }

  app.get(
    '/platform/retention',
    {
      preHandler: requirePermission(P.platformAdmin),
      schema: {
        tags: ['governance'],
        summary: 'The retention bounds the platform sets for every tenant',
        response: { 200: Type.Object({ items: Type.Array(Type.Object({ target: Type.String(), ...Bounds })) }) },
      },
    },
    async (request) => {
      platformOnly(request)
      const all = await deps.orgTx(PLATFORM_ORG, (tx) => retentionBounds(tx))
      return { items: [...all].map(([target, b]) => ({ target, ...b })) }
    },
  )

  app.put(
    '/platform/retention',
    {
      preHandler: requirePermission(P.platformAdmin),
      schema: {
        tags: ['governance'],
        summary:
          'Set the bounds of a target: a kernel record kind, "collections" (every plugin collection) or <plugin>/<collection>; none removes them',
        body: Type.Object(
          { target: Type.String({ minLength: 1, maxLength: 300 }), ...BoundsIn },
          { additionalProperties: false },
        ),
        response: { 200: Type.Object({ target: Type.String(), ...Bounds }) },
      },
    },
    async (request) => {
      platformOnly(request)
      const body = request.body as { target: string; minDays?: number; maxDays?: number; defaultDays?: number }
      const bounds = {
        minDays: body.minDays ?? null,
        maxDays: body.maxDays ?? null,
        defaultDays: body.defaultDays ?? null,
      }
      return deps.orgTx(PLATFORM_ORG, async (tx) => {
        const r = await setRetentionBounds(tx, body.target, bounds, actorOf(request))
        await appendAudit(tx, PLATFORM_ORG, {
          ...auditMeta(request),
          action: 'governance.retention.bounds_changed',
          target: { kind: 'retention_target', id: body.target },
          data: { minDays: r.minDays, maxDays: r.maxDays, defaultDays: r.defaultDays },
        })
        return r
      })
    },
  )
}
