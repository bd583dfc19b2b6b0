import { Type } from '@sinclair/typebox'
import { MKT_GOVERNANCE as MKT } from './errors.js'
import { VersionRow, versionView, type VersionDbRow } from './version-view.js'
import {
  KERNEL_PERMISSIONS as P,
  KRN,
  PLATFORM_ORG,
  PageQuery,
  auditMeta,
  decodeCursor,
  kernelEvent,
  pageOf,
  principalOf,
  requirePermission,
  toPage,
  type Api,
  type AuditRecord,
  type Principal,
} from '@trellis/core'
import type { Services } from '../services.js'

const IdParams = Type.Object({ id: Type.String({ format: 'uuid' }) })
const Decision = Type.Object(
  { reason: Type.String({ minLength: 3, maxLength: 2000, description: 'Mandatory: shown to the publisher.' }) },
  { additionalProperties: false },
)
const ReviewItem = Type.Intersect([
  VersionRow,
  Type.Object({ publisherName: Type.Union([Type.String(), Type.Null()]) }),
])

/**
 * The review queue and decisions. Only platform admins with `marketplace.review` decide, never
 * one who belongs to the publishing partner; what is approved is the exact digest that gets
 * installed (the kernel verifies it whenever it loads the bundle).
 */
export function registerReviewRoutes(app: Api, k: Services): void {
  app.get(
    '/marketplace/reviews',
    {
      preHandler: requirePermission(P.marketplaceReview),
      schema: {
        tags: ['marketplace'],
        summary:
          'Versions awaiting review: manifest, check results, capability diff against the last approved version, changelog',
        querystring: Type.Object(PageQuery),
        response: { 200: pageOf(ReviewItem) },
      },
    },
    async (request) => {
      const limit = request.query.limit ?? 50
      const after = decodeCursor(request.query.cursor)
      const { rows, publishers } = await k.tx.read(PLATFORM_ORG, async (tx) => {
        const rows = await k.versions.inStatus(tx, 'in_review', { after, limit: limit + 1 })
        return {
          rows,
          publishers: await k.organisations.getMany(
            tx,
            rows.map((r) => r.publisher_id),
          ),
        }
      })
      return toPage(
        rows.map((r) => ({
          ...versionView(r as unknown as VersionDbRow),
          publisherName: (r.publisher_id && publishers.get(r.publisher_id)?.name) || null,
        })),
        limit,
      )
    },
  )

  for (const decision of ['approve', 'reject'] as const) {
    app.post(
      `/marketplace/versions/:id/${decision}`,
      {
        preHandler: requirePermission(P.marketplaceReview),
        schema: {
          tags: ['marketplace'],
          summary:
            decision === 'approve'
              ? 'Approve a version in review: tenants may install it'
              : 'Reject a version in review',
          params: IdParams,
          body: Decision,
          response: { 200: VersionRow },
        },
      },
      async (request) =>
        versionView(
          await decide(k, principalOf(request), request.params.id, decision, request.body.reason, auditMeta(request)),
        ),
    )
  }
}

/**
 * Approves or rejects a version in review, as `p` (a platform reviewer who is not a member of
 * the publishing partner), with the reason; audited, and the platform and the publisher told.
 */
export async function decide(
  k: Services,
  p: Principal,
  versionId: string,
  decision: 'approve' | 'reject',
  reason: string,
  meta: Pick<AuditRecord, 'actor' | 'ip' | 'requestId'>,
): Promise<VersionDbRow> {
  const status = decision === 'approve' ? 'approved' : 'rejected'
  const row = await k.tx.run(PLATFORM_ORG, async (tx) => {
    const v = await k.versions.get(tx, versionId, { lock: true })
    if (!v) throw KRN.NOT_FOUND({ what: 'plugin version' })
    if (v.status !== 'in_review') throw MKT.NOT_IN_REVIEW({ status: v.status })
    if (v.publisher_id && (await k.memberships.holdsRole(tx, p.userId, v.publisher_id))) throw MKT.SELF_REVIEW()
    const review = { reason, reviewer: { kind: p.kind, id: p.id, userId: p.userId }, meta }
    // Approving records the approved digest in the platform's audit chain (the registry does it).
    const updated =
      decision === 'approve' ? await k.versions.approve(tx, v.id, review) : await k.versions.reject(tx, v.id, review)
    if (!updated) throw MKT.NOT_IN_REVIEW({ status: v.status })
    if (decision === 'reject')
      await k.audit.append(tx, PLATFORM_ORG, {
        ...meta,
        action: 'marketplace.version.rejected',
        target: { kind: 'plugin_version', id: v.id },
        data: { plugin: v.name, version: v.version, sha256: v.sha256, artifactSha256: v.artifact_sha256, reason },
      })
    await k.events.emitTo(
      tx,
      PLATFORM_ORG,
      [PLATFORM_ORG, v.publisher_id],
      kernelEvent(`marketplace.version.${status}`, `plugin/${v.name}`, {
        versionId: v.id,
        plugin: v.name,
        version: v.version,
        reason,
      }),
    )
    return updated as unknown as VersionDbRow
  })
  return row
}
