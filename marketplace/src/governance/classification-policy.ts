import { Type } from '@sinclair/typebox'
import {
  AUTH,
  KERNEL_PERMISSIONS as P,
  PLATFORM_ORG,
  auditMeta,
  principalOf,
  requirePermission,
  type Api,
  type ExtensionTx,
} from '@trellis/core'
import type { Services } from '../services.js'

/** Whether the platform requires new versions to classify every collection field. */
export async function classificationRequired(tx: ExtensionTx): Promise<boolean> {
  const [row] = await tx.sql<{ require_classification: boolean }>(
    'select require_classification from marketplace_policy where id',
  )
  return row?.require_classification ?? false
}

const PolicyView = Type.Object({
  requireClassification: Type.Boolean({
    description: 'New versions whose collections leave a field unclassified fail the data-classification check',
  }),
})

/**
 * The marketplace's data policy, set by a platform admin: whether every collection field of a
 * newly published version must carry a classification. Versions already published keep their
 * check results; the setting applies to the checks run from then on. Changes are audited.
 */
export function registerClassificationPolicyRoutes(app: Api, k: Services): void {
  app.get(
    '/marketplace/policy',
    {
      preHandler: requirePermission(P.platformAdmin),
      schema: { tags: ['marketplace'], summary: "The marketplace's data policy", response: { 200: PolicyView } },
    },
    async () => ({ requireClassification: await k.tx.read(PLATFORM_ORG, (tx) => classificationRequired(tx)) }),
  )

  app.put(
    '/marketplace/policy',
    {
      preHandler: requirePermission(P.platformAdmin),
      schema: {
        tags: ['marketplace'],
        summary: 'Require (or stop requiring) data classification of new versions',
        body: Type.Object({ requireClassification: Type.Boolean() }, { additionalProperties: false }),
        response: { 200: PolicyView },
      },
    },
    async (request) => {
      const p = principalOf(request)
      if (p.orgId !== PLATFORM_ORG) throw AUTH.FORBIDDEN({ permission: P.platformAdmin })
      const required = request.body.requireClassification
      await k.tx.run(PLATFORM_ORG, async (tx) => {
        await tx.sql(
          'update marketplace_policy set require_classification = ?, updated_at = now(), updated_by = ? where id',
          [required, `${p.kind}:${p.id}`],
        )
        await k.audit.append(tx, PLATFORM_ORG, {
          ...auditMeta(request),
          action: 'marketplace.policy.changed',
          target: { kind: 'marketplace_policy', id: 'classification' },
          data: { requireClassification: required },
        })
      })
      return { requireClassification: required }
    },
  )
}
