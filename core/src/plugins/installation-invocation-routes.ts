import { Type } from '@sinclair/typebox'
import type { Api } from '../http/types.js'
import type { OrgTx } from '../http/route-deps.js'
import type { Database } from '../db/database.js'
import { KRN } from '../errors.js'
import { PageQuery, pageOf, decodeCursor, toPageOf } from '../http/pagination.js'
import { readerTenant } from './installation-access.js'
import { IdParams, InvocationView, TenantQuery, invocationView } from './installation-schemas.js'

export interface InvocationRouteDeps {
  orgTx: OrgTx
  db: Pick<Database, 'unscoped'>
  /** Writes the invocation records still buffered, so the answer includes the latest. */
  flushRecords(): Promise<void>
}

/** An installation's invocation records: what partners and tenants read to see how a plugin behaves. */
export function registerInvocationRoutes(app: Api, deps: InvocationRouteDeps): void {
  app.get(
    '/installations/:id/invocations',
    {
      schema: {
        tags: ['plugins'],
        summary: 'Invocation records of an installation, newest first: duration, CPU, host calls, outcome, log lines',
        params: IdParams,
        querystring: Type.Intersect([TenantQuery, Type.Object(PageQuery)]),
        response: { 200: pageOf(InvocationView) },
      },
    },
    async (request) => {
      const tenantId = await readerTenant(deps, request, request.query.tenantId)
      await deps.flushRecords()
      const before = decodeCursor(request.query.cursor)
      const limit = request.query.limit ?? 50
      const rows = await deps.orgTx(tenantId, async (tx) => {
        const [inst] = await tx.sql('select 1 from plugin_installations where id = ?::uuid', [request.params.id])
        if (!inst) throw KRN.NOT_FOUND({ what: 'installation' })
        return tx.sql<Record<string, unknown>>(
          `select * from plugin_invocations where installation_id = ?::uuid and (?::uuid is null or id < ?::uuid) order by id desc limit ?`,
          [request.params.id, before, before, limit + 1],
        )
      })
      return toPageOf(rows as Array<Record<string, unknown> & { id: string }>, limit, invocationView)
    },
  )
}
