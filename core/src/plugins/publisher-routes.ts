import { Type } from '@sinclair/typebox'
import type { Api } from '../http/types.js'
import type { KernelContext } from '../kernel-context.js'
import { KRN } from '../errors.js'
import { principalOf, requirePermission } from '../http/guards.js'
import { PageQuery, pageOf, decodeCursor, toPageOf } from '../http/pagination.js'
import { KERNEL_PERMISSIONS as P } from '../identity/permissions.js'
import { PLATFORM_ORG } from '../db/database.js'
import { invocationView } from './installation-routes.js'
import { HostCallTranscript } from './installation-schemas.js'

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
const isPlatform = (p: { orgKind: string; orgId: string }) => p.orgKind === 'platform' && p.orgId === PLATFORM_ORG

/** Invocation records of a plugin across tenants, for its publishing partner (and platform admins). */
/** What the publisher's invocation view reads: the database and the invocation recorder. */
export type PublisherRouteDeps = Pick<KernelContext, 'db'> & { plugins: Pick<KernelContext['plugins'], 'recorder'> }

export function registerPublisherRoutes(app: Api, k: PublisherRouteDeps): void {
  app.get(
    '/plugins/:scope/:name/invocations',
    {
      preHandler: requirePermission(),
      schema: {
        tags: ['plugins'],
        summary: 'Invocation records of a plugin across tenants, for its publisher (no tenant, caller or log data)',
        params: Type.Object({
          scope: Type.String({ pattern: '^@[a-z0-9][a-z0-9-]*$' }),
          name: Type.String({ pattern: '^[a-z0-9][a-z0-9-]*$' }),
        }),
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
        const [own] = await tx.sql<{ publisher_id: string | null }>(
          'select publisher_id from plugin_versions where name = ? and publisher_id is not null limit 1',
          [plugin],
        )
        const publisher =
          p.orgKind === 'partner' && p.permissions.has(P.pluginsPublish) && own?.publisher_id === p.orgId
        if (!publisher && !isPlatform(p)) throw KRN.NOT_FOUND({ what: `plugin ${plugin}` })
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
