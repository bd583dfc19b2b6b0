/**
 * `GET /v1/metrics` (what the caller may see) and `GET /v1/metrics/:name` (a series or a table).
 * Permission is checked before the query is validated; a metric the caller may not read is 403.
 */
import { Type } from '@sinclair/typebox'
import type { Api } from '../http/types.js'
import type { OrgTx } from '../http/route-deps.js'
import { principalOf, requirePermission } from '../http/guards.js'
import { AUTH } from '../errors.js'
import { MET } from './errors.js'
import { activeManifests, availableMetrics, mayRead, type InstalledSource } from './catalog.js'
import { answerMetric } from './answer.js'
import { parseMetricQuery } from './query.js'
import { GRAINS } from './types.js'
import { registerInsightRoutes } from '../insights/routes.js'
import { registerAlertRoutes } from '../insights/alert-routes.js'
import { registerAggregateRoutes } from '../insights/aggregate-routes.js'
import { registerRollupRoutes } from './rollup-routes.js'
import { registerLateRoutes } from '../insights/late-routes.js'

const MetricView = Type.Object({
  name: Type.String({ description: '`<mount>.<metric>`, e.g. `orders.net_sales`.' }),
  title: Type.String(),
  description: Type.Union([Type.String(), Type.Null()]),
  plugin: Type.String(),
  unit: Type.Union([Type.String(), Type.Null()]),
  time: Type.String(),
  dimensions: Type.Array(Type.String()),
  grains: Type.Array(Type.String()),
})

const Query = Type.Object({
  from: Type.Optional(Type.String({ description: 'Inclusive start date (YYYY-MM-DD).' })),
  to: Type.Optional(Type.String({ description: 'Exclusive end date (YYYY-MM-DD).' })),
  grain: Type.Optional(Type.String({ description: `One of ${GRAINS.join(', ')}: a series by period.` })),
  groupBy: Type.Optional(Type.String({ description: 'Comma-separated dimension names: a table.' })),
  filter: Type.Optional(Type.String({ description: 'JSON object: dimension → value or array of values.' })),
  limit: Type.Optional(Type.String({ description: 'Most rows (1 to 10000).' })),
})

/** Dependencies of the metric routes. */
export interface MetricRouteDeps {
  orgTx: OrgTx
  plugins: InstalledSource
  /** Today's UTC date (`YYYY-MM-DD`); by default that of `now`. */
  today?: () => string
  /** The time; the workflow clock in the kernel. */
  now?: () => Date
}

export function registerMetricRoutes(app: Api, deps: MetricRouteDeps): void {
  const now = deps.now ?? (() => new Date())
  const today = deps.today ?? (() => now().toISOString().slice(0, 10))
  registerInsightRoutes(app, { ...deps, today })
  registerAlertRoutes(app, deps)
  registerAggregateRoutes(app, { ...deps, today })
  registerRollupRoutes(app, { ...deps, now })
  registerLateRoutes(app, { ...deps, now })
  app.get(
    '/metrics',
    {
      preHandler: requirePermission(),
      schema: {
        tags: ['metrics'],
        summary: 'Metrics you may read: those the installed plugins declare over data you may read',
        response: { 200: Type.Object({ items: Type.Array(MetricView) }) },
      },
    },
    async (request) => {
      const p = principalOf(request)
      if (p.orgKind !== 'tenant') return { items: [] }
      const all = await availableMetrics(deps.plugins, p.orgId)
      const items = [...all.values()]
        .filter((m) => mayRead(p.permissions, m))
        .sort((a, b) => a.name.localeCompare(b.name))
        .map((m) => ({
          name: m.name,
          title: m.declaration.title,
          description: m.declaration.description ?? null,
          plugin: m.plugin,
          unit: m.declaration.unit ?? null,
          time: m.declaration.time,
          dimensions: Object.keys(m.declaration.dimensions ?? {}).sort(),
          grains: [...GRAINS],
        }))
      return { items }
    },
  )
  app.get(
    '/dashboards',
    {
      preHandler: requirePermission(),
      schema: {
        tags: ['metrics'],
        summary: "The installed plugins' dashboards: panels over metrics, as data for a console to render",
        response: {
          200: Type.Object({
            items: Type.Array(
              Type.Object({
                name: Type.String({ description: '`<mount>.<dashboard>`' }),
                plugin: Type.String(),
                title: Type.String(),
                description: Type.Union([Type.String(), Type.Null()]),
                panels: Type.Array(Type.Record(Type.String(), Type.Unknown())),
                hiddenPanels: Type.Integer({ description: 'Panels over metrics you may not read, left out.' }),
              }),
            ),
          }),
        },
      },
    },
    async (request) => {
      const p = principalOf(request)
      if (p.orgKind !== 'tenant') return { items: [] }
      const [{ active, manifests }, metrics] = await Promise.all([
        activeManifests(deps.plugins, p.orgId),
        availableMetrics(deps.plugins, p.orgId),
      ])
      const readable = (name: string) => {
        const m = metrics.get(name)
        return !!m && mayRead(p.permissions, m)
      }
      const items = active.flatMap((inst) =>
        Object.entries(manifests.get(inst.plugin)?.dashboards ?? {}).map(([name, d]) => {
          const panels = d.panels.filter((panel) => readable(panel.metric))
          return {
            name: `${inst.mount}.${name}`,
            plugin: inst.plugin,
            title: d.title,
            description: d.description ?? null,
            panels: panels as unknown as Array<Record<string, unknown>>,
            hiddenPanels: d.panels.length - panels.length,
          }
        }),
      )
      return { items: items.sort((a, b) => a.name.localeCompare(b.name)) }
    },
  )
  app.get(
    '/metrics/:name',
    {
      preHandler: requirePermission(),
      schema: {
        tags: ['metrics'],
        summary: 'A metric as a series (grain) or a table (groupBy), over a date window',
        params: Type.Object({ name: Type.String({ maxLength: 200 }) }),
        querystring: Query,
      },
    },
    async (request) => {
      const p = principalOf(request)
      const { name } = request.params as { name: string }
      const all = p.orgKind === 'tenant' ? await availableMetrics(deps.plugins, p.orgId) : new Map()
      const m = all.get(name)
      if (!m) throw MET.NOT_FOUND({ name })
      if (!mayRead(p.permissions, m)) throw AUTH.FORBIDDEN({ permission: m.declaration.permission })
      const query = parseMetricQuery(request.query as Record<string, unknown>, m.declaration)
      return answerMetric({ orgTx: deps.orgTx, today }, p.orgId, m, query)
    },
  )
}
