/**
 * `GET /v1/insights/late-instances?plugin&workflow&due`: which running instances of a workflow
 * (a partner onboarding, say) will finish late, judged against the completed ones
 * ({@link lateInstances}). Workflow telemetry: `workflows.manage`, the tenant's own instances.
 */
import { Type } from '@sinclair/typebox'
import { principalOf, requirePermission } from '../http/guards.js'
import type { Api } from '../http/types.js'
import { KERNEL_PERMISSIONS } from '../identity/permissions.js'
import { MET } from '../metrics/errors.js'
import type { MetricRouteDeps } from '../metrics/routes.js'
import { lateInstances } from './late-instances.js'

const Query = Type.Object({
  plugin: Type.Optional(
    Type.String({ description: 'The plugin declaring the workflow, e.g. `@trellis/partner-onboarding`.' }),
  ),
  workflow: Type.Optional(Type.String({ description: 'The workflow, e.g. `onboarding`.' })),
  due: Type.Optional(
    Type.String({ description: 'Days from start within which an instance is on time (0.01 to 3650).' }),
  ),
})

export function registerLateRoutes(app: Api, deps: MetricRouteDeps & { now: () => Date }): void {
  app.get(
    '/insights/late-instances',
    {
      preHandler: requirePermission(KERNEL_PERMISSIONS.workflowsManage),
      schema: {
        tags: ['metrics'],
        summary:
          "Running instances of a workflow, each with the probability of finishing after the due time, from the completed instances' durations",
        querystring: Query,
      },
    },
    async (request) => {
      const p = principalOf(request)
      const q = request.query as { plugin?: string; workflow?: string; due?: string }
      for (const field of ['plugin', 'workflow'] as const)
        if (!q[field] || q[field]!.length > 200) throw MET.QUERY_INVALID({ field, reason: 'is required' })
      const due = Number(q.due)
      if (q.due === undefined || !Number.isFinite(due) || due < 0.01 || due > 3650)
        throw MET.QUERY_INVALID({ field: 'due', reason: 'is a number of days from 0.01 to 3650' })
      if (p.orgKind !== 'tenant') throw MET.QUERY_INVALID({ field: 'plugin', reason: 'workflows run in tenants' })
      const now = deps.now()
      return deps.orgTx(p.orgId, (tx) => lateInstances(tx, q.plugin!, q.workflow!, due, now))
    },
  )
}
