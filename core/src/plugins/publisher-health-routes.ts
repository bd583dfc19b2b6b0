import { Type } from '@sinclair/typebox'
import type { Api } from '../http/types.js'
import type { PublisherRouteDeps } from './publisher-routes.js'
import { principalOf, requirePermission } from '../http/guards.js'
import { PluginNameParams, assertPublisherOf } from './publisher-access.js'

const VersionHealth = Type.Object({
  version: Type.String(),
  invocations: Type.Integer(),
  errors: Type.Integer(),
  tenants: Type.Integer({ description: 'How many tenants ran it in the window (a count, never which).' }),
  wallMsP50: Type.Number(),
  wallMsP95: Type.Number(),
  cpuMsAvg: Type.Number(),
  lastAt: Type.String({ format: 'date-time' }),
})

interface HealthRow {
  version: string
  invocations: string | number
  errors: string | number
  tenants: string | number
  wall_p50: number
  wall_p95: number
  cpu_avg: number
  last_at: Date | string
}

const round = (n: number) => Math.round(Number(n) * 100) / 100

/**
 * A plugin's health across the tenants that run it, per version over the last `hours`:
 * invocations, errors, latency (p50, p95 wall time) and CPU — aggregates for its publisher and
 * platform admins, never a tenant, caller, input or log (trellis_plugin_health returns none).
 */
export function registerPublisherHealthRoutes(app: Api, k: PublisherRouteDeps): void {
  app.get(
    '/plugins/:scope/:name/health',
    {
      preHandler: requirePermission(),
      schema: {
        tags: ['plugins'],
        summary: "A plugin's health across tenants, per version: invocations, errors, latency (for its publisher)",
        params: PluginNameParams,
        querystring: Type.Object({ hours: Type.Optional(Type.Integer({ minimum: 1, maximum: 720, default: 24 })) }),
        response: { 200: Type.Object({ hours: Type.Integer(), versions: Type.Array(VersionHealth) }) },
      },
    },
    async (request) => {
      const p = principalOf(request)
      const plugin = `${request.params.scope}/${request.params.name}`
      const hours = request.query.hours ?? 24
      await k.plugins.recorder.flush()
      const rows = await k.db.inOrg(p.orgId, async (tx) => {
        await assertPublisherOf(tx, p, plugin)
        return tx.sql<HealthRow>('select * from trellis_plugin_health(?, now() - make_interval(hours => ?))', [
          plugin,
          hours,
        ])
      })
      return {
        hours,
        versions: rows.map((r) => ({
          version: r.version,
          invocations: Number(r.invocations),
          errors: Number(r.errors),
          tenants: Number(r.tenants),
          wallMsP50: round(r.wall_p50),
          wallMsP95: round(r.wall_p95),
          cpuMsAvg: round(r.cpu_avg),
          lastAt: new Date(r.last_at).toISOString(),
        })),
      }
    },
  )
}
