import { Type } from '@sinclair/typebox'
import type { FastifyRequest } from 'fastify'
import type { Api } from '../http/types.js'
import type { OrgTx } from '../http/route-deps.js'
import type { Database } from '../db/database.js'
import { KRN } from '../errors.js'
import { auditedWrite } from '../audit/audited-write.js'
import { auditOf, principalOf } from '../http/guards.js'
import type { PluginHost } from './plugin-host.js'
import { targetTenant } from './installation-access.js'
import { IdParams, TenantQuery, Uuid } from './installation-schemas.js'

export interface DetailWindowRouteDeps {
  orgTx: OrgTx
  db: Pick<Database, 'unscoped'>
  plugins: Pick<PluginHost, 'forgetTenant'>
}

/** The longest detail window, in minutes. */
export const MAX_DETAIL_MINUTES = 240

const DetailWindow = Type.Object({
  installationId: Uuid,
  detailUntil: Type.Union([Type.String({ format: 'date-time' }), Type.Null()], {
    description: "Until when every run keeps its input and its host calls' arguments and results; null: none open",
  }),
})

const SET_WINDOW = `update plugin_installations
   set detail_until = case when ?::int is null then null else now() + make_interval(mins => ?::int) end
 where id = ?::uuid returning id, detail_until`

/**
 * An installation's detail window (ADR 0113): while it is open every run keeps its whole
 * transcript, past the installation's budget of detailed records a minute — what someone
 * investigating a busy plugin opens, for at most {@link MAX_DETAIL_MINUTES} minutes.
 */
export function registerDetailWindowRoutes(app: Api, deps: DetailWindowRouteDeps): void {
  const set = async (request: FastifyRequest, id: string, tenantQuery: string | undefined, minutes: number | null) => {
    const tenantId = await targetTenant(deps, principalOf(request), tenantQuery)
    const [row] = await deps.orgTx(tenantId, (tx) =>
      auditedWrite<{ id: string; detail_until: Date | null }>(tx, {
        write: { sql: SET_WINDOW, params: [minutes, minutes, id] },
        auditOrg: tenantId,
        audit: auditOf(
          request,
          minutes === null ? 'plugin.detail.closed' : 'plugin.detail.opened',
          { kind: 'plugin_installation', id },
          minutes === null ? {} : { minutes },
        ),
        last: true,
      }),
    )
    if (!row) throw KRN.NOT_FOUND({ what: 'installation' })
    // The runs of this process see the window at once; other processes within their cache's life.
    deps.plugins.forgetTenant(tenantId, { subscriptions: false })
    return {
      installationId: row.id,
      detailUntil: row.detail_until ? new Date(row.detail_until).toISOString() : null,
    }
  }

  app.put(
    '/installations/:id/detail-window',
    {
      schema: {
        tags: ['plugins'],
        summary: `Keep every run's input and host-call arguments and results for the next minutes (at most ${MAX_DETAIL_MINUTES}), past the budget`,
        params: IdParams,
        querystring: TenantQuery,
        body: Type.Object(
          { minutes: Type.Integer({ minimum: 1, maximum: MAX_DETAIL_MINUTES }) },
          { additionalProperties: false },
        ),
        response: { 200: DetailWindow },
      },
    },
    (request) => set(request, request.params.id, request.query.tenantId, request.body.minutes),
  )

  app.delete(
    '/installations/:id/detail-window',
    {
      schema: {
        tags: ['plugins'],
        summary: 'Close the detail window: successful runs keep their detail within the budget again',
        params: IdParams,
        querystring: TenantQuery,
        response: { 200: DetailWindow },
      },
    },
    (request) => set(request, request.params.id, request.query.tenantId, null),
  )
}
