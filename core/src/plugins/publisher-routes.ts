import { Type } from '@sinclair/typebox'
import type { Api } from '../http/types.js'
import type { KernelContext } from '../kernel-context.js'
import { principalOf, requirePermission } from '../http/guards.js'
import { PageQuery, pageOf, decodeCursor, toPageOf } from '../http/pagination.js'
import { invocationView } from './installation-routes.js'
import { HostCallTranscript } from './installation-schemas.js'
import { registerPublisherHealthRoutes } from './publisher-health-routes.js'
import { PluginNameParams, assertPublisherOf } from './publisher-access.js'

const Uuid = Type.String({ format: 'uuid' })
const PublisherInvocation = Type.Object({
  id: Uuid,
  version: Type.String(),
  entryKind: Type.String(),
  entryName: Type.String(),
  startedAt: Type.String({ format: 'date-time' }),
  wallMs: Type.Number(),
  cpuMs: Type.Number(),
  hostCalls: Type.Integer(),
  outcome: Type.String(),
  errorCode: Type.Union([Type.String(), Type.Null()]),
  transcript: Type.Union([HostCallTranscript, Type.Null()], {
    description: 'The host calls made: ops, outcomes and durations, never their arguments or results',
  }),
})
/** What the publisher's invocation view reads: the database and the invocation recorder. */
export type PublisherRouteDeps = Pick<KernelContext, 'db'> & { plugins: Pick<KernelContext['plugins'], 'recorder'> }

/** Invocation records of a plugin across tenants (and their health), for its publishing partner and platform admins. */
export function registerPublisherRoutes(app: Api, k: PublisherRouteDeps): void {
  registerPublisherHealthRoutes(app, k)
  app.get(
    '/plugins/:scope/:name/invocations',
    {
      preHandler: requirePermission(),
      schema: {
        tags: ['plugins'],
        summary: 'Invocation records of a plugin across tenants, for its publisher (no tenant, caller or log data)',
        params: PluginNameParams,
        querystring: Type.Object(PageQuery),
        response: { 200: pageOf(PublisherInvocation) },
      },
    },
    async (request) => {
      const p = principalOf(request)
      const plugin = `${request.params.scope}/${request.params.name}`
      const limit = request.query.limit ?? 50
      await k.plugins.recorder.flush()
      const rows = await k.db.inOrg(p.orgId, async (tx) => {
        await assertPublisherOf(tx, p, plugin)
        return tx.sql<Record<string, unknown>>('select * from trellis_plugin_invocations(?, ?::uuid, ?)', [
          plugin,
          decodeCursor(request.query.cursor),
          limit + 1,
        ])
      })
      // The tenant admin's view, without what the function never returns (tenant, caller, logs,
      // input, host-call arguments and results).
      return toPageOf(rows as Array<Record<string, unknown> & { id: string }>, limit, (r) => {
        const { plugin: _p, callerKind: _k, callerId: _c, logs: _l, input: _i, ...rest } = invocationView(r)
        return rest
      })
    },
  )
}
