/**
 * `GET /v1/partner/metrics/:name`: a metric across the calling partner's tenants, as aggregates
 * (total for sums and counts, and the spread across tenants) — never a record, never one
 * tenant's figure. `GET /v1/platform/metrics/:name/peers`: each partner's value per tenant
 * against the distribution of its peers (percentile and robust score): partner performance
 * variance, for the platform.
 */
import { Type } from '@sinclair/typebox'
import { AUTH } from '../errors.js'
import { principalOf, requirePermission } from '../http/guards.js'
import type { Api } from '../http/types.js'
import { KERNEL_PERMISSIONS as P } from '../identity/permissions.js'
import { MET } from '../metrics/errors.js'
import type { MetricRouteDeps } from '../metrics/routes.js'
import { againstPeers, answersAcross, combineAnswers, isAdditive } from './aggregates.js'

const Name = Type.Object({ name: Type.String({ maxLength: 200 }) })
const Query = Type.Object({
  from: Type.Optional(Type.String()),
  to: Type.Optional(Type.String()),
  grain: Type.Optional(Type.String()),
  groupBy: Type.Optional(Type.String()),
  filter: Type.Optional(Type.String()),
})

export function registerAggregateRoutes(app: Api, deps: MetricRouteDeps & { today: () => string }): void {
  app.get(
    '/partner/metrics/:name',
    {
      preHandler: requirePermission(P.tenantsRead),
      schema: {
        tags: ['metrics'],
        summary: "A metric across your tenants: totals and the spread across tenants, never a tenant's own figures",
        params: Name,
        querystring: Query,
      },
    },
    async (request) => {
      const p = principalOf(request)
      if (p.orgKind !== 'partner') throw AUTH.FORBIDDEN({ permission: P.tenantsRead })
      const { name } = request.params as { name: string }
      const tenants = await deps.orgTx(p.orgId, (tx) =>
        tx.sql<{ id: string }>(`select id from tenants where partner_id = ?::uuid and status = 'active' order by id`, [
          p.orgId,
        ]),
      )
      const { metric, answers } = await answersAcross(
        deps,
        tenants.map((t) => t.id),
        name,
        request.query as Record<string, unknown>,
      )
      const additive = isAdditive(metric.declaration.measure)
      return {
        metric: name,
        title: metric.declaration.title,
        unit: metric.declaration.unit ?? null,
        tenants: answers.length,
        additive,
        rows: combineAnswers(answers, additive),
      }
    },
  )

  app.get(
    '/platform/metrics/:name/peers',
    {
      preHandler: requirePermission(P.platformAdmin),
      schema: {
        tags: ['metrics'],
        summary: "Each partner's value per tenant over a window, against the distribution of its peers",
        params: Name,
        querystring: Type.Object({
          from: Type.Optional(Type.String()),
          to: Type.Optional(Type.String()),
          filter: Type.Optional(Type.String()),
        }),
      },
    },
    async (request) => {
      const p = principalOf(request)
      const { name } = request.params as { name: string }
      const rows = await deps.orgTx(p.orgId, (tx) =>
        tx.sql<{ id: string; partner_id: string; partner: string }>(
          `select t.id, t.partner_id, pa.name as partner from tenants t join partners pa on pa.id = t.partner_id
            where t.status = 'active' and pa.status = 'active' order by t.id`,
        ),
      )
      const byPartner = new Map<string, { name: string; tenants: string[] }>()
      for (const r of rows) {
        const e = byPartner.get(r.partner_id) ?? { name: r.partner, tenants: [] }
        e.tenants.push(r.id)
        byPartner.set(r.partner_id, e)
      }
      const raw = request.query as Record<string, unknown>
      let additive = false
      let found = false
      const partners: Array<{
        partnerId: string
        name: string
        tenants: number
        total: number | null
        perTenant: number
      }> = []
      for (const [partnerId, e] of byPartner) {
        try {
          const { metric, answers } = await answersAcross(deps, e.tenants, name, raw)
          found = true
          additive = isAdditive(metric.declaration.measure)
          const values = answers.map((a) => Number(a.rows[0]?.value ?? 0))
          const sum = values.reduce((s, v) => s + v, 0)
          partners.push({
            partnerId,
            name: e.name,
            tenants: values.length,
            total: additive ? sum : null,
            perTenant: sum / values.length,
          })
        } catch (err) {
          if ((err as { code?: string }).code !== 'MET_ERR_NOT_FOUND') throw err
        }
      }
      if (!found) throw MET.NOT_FOUND({ name })
      return {
        metric: name,
        additive,
        partners: partners
          .sort((a, b) => a.name.localeCompare(b.name))
          .map((x) => ({
            ...x,
            ...againstPeers(
              x.perTenant,
              partners.filter((o) => o.partnerId !== x.partnerId).map((o) => o.perTenant),
            ),
          })),
      }
    },
  )
}
