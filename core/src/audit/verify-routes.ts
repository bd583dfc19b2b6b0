import { Type } from '@sinclair/typebox'
import type { Api } from '../http/types.js'
import type { Database } from '../db/database.js'
import { principalOf, requirePermission } from '../http/guards.js'
import { KERNEL_PERMISSIONS as P } from '../identity/permissions.js'
import { verifyChain } from './verify.js'

const ChainStatus = Type.Object({
  ok: Type.Boolean({ description: 'Every sealed entry links to the one before and matches its hash.' }),
  entries: Type.Integer({ description: 'Sealed entries checked (up to the first broken one).' }),
  unsealed: Type.Integer({ description: 'Entries written moments ago, not chained yet.' }),
  brokenAt: Type.Union([
    Type.Object({ seq: Type.String(), id: Type.Union([Type.String(), Type.Null()]), reason: Type.String() }),
    Type.Null(),
  ]),
  head: Type.Union([Type.Object({ seq: Type.String(), hash: Type.String() }), Type.Null()], {
    description: 'The chain head, to anchor elsewhere (absent when broken or empty).',
  }),
  checkedAt: Type.String({ format: 'date-time' }),
})

/**
 * `GET /v1/audit/verify`: recomputes the caller's organisation's audit chain, as `trellis audit
 * verify` does, and answers whether it holds, or its first broken link. The console's audit page
 * shows it. Reads the whole chain (as the auditor role): asked for, not polled. ADR 0068.
 */
export function registerAuditVerifyRoutes(app: Api, deps: { db: Database }): void {
  app.get(
    '/audit/verify',
    {
      preHandler: requirePermission(P.auditRead),
      schema: {
        tags: ['audit'],
        summary: "Verify your organisation's audit chain: intact, or where it first breaks",
        response: { 200: ChainStatus },
      },
    },
    async (request) => {
      const p = principalOf(request)
      const report = await verifyChain(deps.db, p.orgId)
      return {
        ok: report.ok,
        entries: report.entries,
        unsealed: report.unsealed,
        brokenAt: report.brokenAt ?? null,
        head: report.head ?? null,
        checkedAt: new Date().toISOString(),
      }
    },
  )
}
