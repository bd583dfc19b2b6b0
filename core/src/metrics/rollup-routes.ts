/**
 * `/v1/metrics/rollups`: materialise a metric's series (grain × groupBy), list, refresh now and
 * remove rollups. Reading a metric answers from a refreshed rollup when one matches the query
 * (see rollups.ts); creating, refreshing and removing one costs the tenant's database work, so
 * it needs `plugins.install` as well as read access to the metric.
 */
import { Type } from '@sinclair/typebox'
import type { FastifyRequest } from 'fastify'
import { AUTH } from '../errors.js'
import { principalOf, requirePermission } from '../http/guards.js'
import type { Api } from '../http/types.js'
import { KERNEL_PERMISSIONS } from '../identity/permissions.js'
import { availableMetrics, mayRead, type AvailableMetric } from './catalog.js'
import { MET } from './errors.js'
import { parseMetricQuery } from './query.js'
import { createRollup, refreshRollup, rollupView, type RollupRecord } from './rollups.js'
import type { MetricRouteDeps } from './routes.js'
import type { Grain } from './types.js'

const Id = Type.Object({ id: Type.String({ format: 'uuid' }) })
const manage = KERNEL_PERMISSIONS.pluginsInstall

export function registerRollupRoutes(app: Api, deps: MetricRouteDeps & { now: () => Date }): void {
  /** The metric named, readable by the caller: 404 when absent, 403 when not theirs to read. */
  const metricFor = async (request: FastifyRequest, name: string): Promise<AvailableMetric> => {
    const p = principalOf(request)
    const all = p.orgKind === 'tenant' ? await availableMetrics(deps.plugins, p.orgId) : new Map()
    const m = all.get(name) as AvailableMetric | undefined
    if (!m) throw MET.NOT_FOUND({ name })
    if (!mayRead(p.permissions, m)) throw AUTH.FORBIDDEN({ permission: m.declaration.permission })
    return m
  }
  /** The rollup `id` of a metric the caller may read, or 404. */
  const rollupFor = async (request: FastifyRequest, id: string) => {
    const p = principalOf(request)
    const [r] =
      p.orgKind === 'tenant'
        ? await deps.orgTx(p.orgId, (tx) =>
            tx.sql<RollupRecord>('select * from metric_rollups where id = ?::uuid', [id]),
          )
        : []
    if (!r) throw MET.ROLLUP_NOT_FOUND({ id })
    const all = await availableMetrics(deps.plugins, p.orgId)
    const m = all.get(r.metric)
    if (m && !mayRead(p.permissions, m)) throw MET.ROLLUP_NOT_FOUND({ id })
    return { p, r, m }
  }

  app.post(
    '/metrics/rollups',
    {
      preHandler: requirePermission(manage),
      schema: {
        tags: ['metrics'],
        summary: "Materialise a metric's series (grain × groupBy); the scheduled insights pass keeps it up to date",
        body: Type.Object({
          metric: Type.String({ maxLength: 200 }),
          grain: Type.String(),
          groupBy: Type.Optional(Type.Array(Type.String({ maxLength: 100 }), { maxItems: 4 })),
        }),
      },
    },
    async (request, reply) => {
      const p = principalOf(request)
      const body = request.body as { metric: string; grain: string; groupBy?: string[] }
      const m = await metricFor(request, body.metric)
      const q = parseMetricQuery(
        { grain: body.grain, ...(body.groupBy?.length ? { groupBy: body.groupBy.join(',') } : {}) },
        m.declaration,
      )
      const row = await deps.orgTx(p.orgId, (tx) => createRollup(tx, m, q.grain as Grain, q.groupBy ?? [], p.userId))
      reply.code(201)
      return rollupView(row)
    },
  )

  app.get(
    '/metrics/rollups',
    { preHandler: requirePermission(), schema: { tags: ['metrics'], summary: 'Rollups of metrics you may read' } },
    async (request) => {
      const p = principalOf(request)
      if (p.orgKind !== 'tenant') return { items: [] }
      const all = await availableMetrics(deps.plugins, p.orgId)
      const rows = await deps.orgTx(p.orgId, (tx) => tx.sql<RollupRecord>('select * from metric_rollups order by id'))
      return {
        items: rows
          .filter((r) => {
            const m = all.get(r.metric)
            return !m || mayRead(p.permissions, m)
          })
          .map(rollupView),
      }
    },
  )

  app.post(
    '/metrics/rollups/:id/refresh',
    {
      preHandler: requirePermission(manage),
      schema: {
        tags: ['metrics'],
        summary: 'Bring a rollup up to date now: only the periods whose records changed',
        params: Id,
      },
    },
    async (request) => {
      const { id } = request.params as { id: string }
      const { p, m, r } = await rollupFor(request, id)
      if (!m) throw MET.SOURCE_UNAVAILABLE({ name: r.metric, reason: 'its plugin or a source is not installed' })
      return deps.orgTx(p.orgId, (tx) => refreshRollup(tx, m, id, deps.now()))
    },
  )

  app.delete(
    '/metrics/rollups/:id',
    { preHandler: requirePermission(manage), schema: { tags: ['metrics'], summary: 'Remove a rollup', params: Id } },
    async (request, reply) => {
      const { id } = request.params as { id: string }
      const { p } = await rollupFor(request, id)
      await deps.orgTx(p.orgId, (tx) => tx.sql('delete from metric_rollups where id = ?::uuid', [id]))
      reply.code(204)
    },
  )
}
