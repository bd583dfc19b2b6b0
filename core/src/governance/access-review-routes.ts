import { Type } from '@sinclair/typebox'
import type { Api } from '../http/types.js'
import type { OrgTx } from '../http/route-deps.js'
import { AUTH, KRN } from '../errors.js'
import { appendAudit } from '../audit/audit-log.js'
import { auditedWrite } from '../audit/audited-write.js'
import { kernelEvent } from '../events/outbox.js'
import { auditMeta, principalOf, requirePermission } from '../http/guards.js'
import { KERNEL_PERMISSIONS as P } from '../identity/permissions.js'
import { announceRevoked, revokeMemberAccess, type RevocationNotice } from '../identity/revocation.js'
import { GOV } from './errors.js'

export interface AccessReviewRouteDeps {
  orgTx: OrgTx
  revocation: RevocationNotice
  /** Milliseconds since the epoch (the kernel's clock). */
  now(): number
}

const Item = Type.Object({
  id: Type.String(),
  kind: Type.String({ description: 'membership or api_key' }),
  subjectId: Type.String({ description: 'The membership or API key id' }),
  label: Type.String({ description: "The member's e-mail, or the key's name" }),
  detail: Type.Unknown({ description: 'The role and user id, or the key permissions' }),
  lastUsedAt: Type.Union([Type.String(), Type.Null()]),
  decision: Type.Union([Type.String(), Type.Null()]),
  decidedBy: Type.Union([Type.String(), Type.Null()]),
  decidedAt: Type.Union([Type.String(), Type.Null()]),
})
const Review = Type.Object({
  id: Type.String(),
  status: Type.String({ description: 'open or completed' }),
  staleDays: Type.Integer(),
  openedAt: Type.String(),
  dueAt: Type.String(),
  completedAt: Type.Union([Type.String(), Type.Null()]),
  completedBy: Type.Union([Type.String(), Type.Null()]),
  items: Type.Array(Item),
})

interface ReviewRow {
  id: string
  status: string
  stale_days: number
  opened_at: Date
  due_at: Date
  completed_at: Date | null
  completed_by: string | null
}
interface ItemRow {
  id: string
  review_id: string
  kind: 'membership' | 'api_key'
  subject_id: string
  label: string
  detail: { userId?: string; role?: string }
  last_used_at: Date | null
  decision: string | null
  decided_by: string | null
  decided_at: Date | null
}

const iso = (t: Date | null) => (t === null ? null : new Date(t).toISOString())
const view = (r: ReviewRow, items: ItemRow[]) => ({
  id: r.id,
  status: r.status,
  staleDays: r.stale_days,
  openedAt: iso(r.opened_at)!,
  dueAt: iso(r.due_at)!,
  completedAt: iso(r.completed_at),
  completedBy: r.completed_by,
  items: items
    .filter((i) => i.review_id === r.id)
    .map((i) => ({
      id: i.id,
      kind: i.kind,
      subjectId: i.subject_id,
      label: i.label,
      detail: i.detail,
      lastUsedAt: iso(i.last_used_at),
      decision: i.decision,
      decidedBy: i.decided_by,
      decidedAt: iso(i.decided_at),
    })),
})

const ITEM_COLS =
  'id::text as id, review_id::text as review_id, kind, subject_id::text as subject_id, label, detail, last_used_at, decision, decided_by, decided_at'

/**
 * The tenant admin's side of the access review: `GET /v1/governance/access-reviews` lists the
 * reviews (the open one first) and `POST /v1/governance/access-reviews/:id/decisions` keeps or
 * removes what they list.
 */
export function registerAccessReviewRoutes(app: Api, deps: AccessReviewRouteDeps): void {
  app.get(
    '/governance/access-reviews',
    {
      preHandler: requirePermission(P.usersManage),
      schema: {
        tags: ['governance'],
        summary: 'Access reviews: memberships and API keys not used for 90 days, to keep or remove',
        response: { 200: Type.Object({ items: Type.Array(Review) }) },
      },
    },
    async (request) => {
      const p = principalOf(request)
      if (p.orgKind !== 'tenant') throw AUTH.FORBIDDEN({ permission: P.usersManage })
      return deps.orgTx(p.orgId, async (tx) => {
        const reviews = await tx.sql<ReviewRow>(
          `select id::text as id, status, stale_days, opened_at, due_at, completed_at, completed_by from access_reviews
            order by status = 'open' desc, opened_at desc limit 20`,
        )
        const items = reviews.length
          ? await tx.sql<ItemRow>(
              `select ${ITEM_COLS} from access_review_items where review_id = any(?::uuid[]) order by kind, label, id`,
              [reviews.map((r) => r.id)],
            )
          : []
        return { items: reviews.map((r) => view(r, items)) }
      })
    },
  )

  app.post(
    '/governance/access-reviews/:id/decisions',
    {
      preHandler: requirePermission(P.usersManage),
      schema: {
        tags: ['governance'],
        summary: 'Keep or remove what an access review lists; the review completes when every item is decided',
        params: Type.Object({ id: Type.String({ format: 'uuid' }) }),
        body: Type.Object(
          {
            decisions: Type.Array(
              Type.Object(
                {
                  itemId: Type.String({ format: 'uuid' }),
                  decision: Type.Union([Type.Literal('keep'), Type.Literal('remove')]),
                },
                { additionalProperties: false },
              ),
              { minItems: 1, maxItems: 500 },
            ),
          },
          { additionalProperties: false },
        ),
        response: { 200: Review },
      },
    },
    async (request) => {
      const p = principalOf(request)
      if (p.orgKind !== 'tenant') throw AUTH.FORBIDDEN({ permission: P.usersManage })
      const meta = auditMeta(request)
      const by = `${p.kind}:${p.id}`
      const now = new Date(deps.now()).toISOString()
      const { result, ended } = await deps.orgTx(p.orgId, async (tx) => {
        const [review] = await tx.sql<ReviewRow>(
          'select id::text as id, status, stale_days, opened_at, due_at, completed_at, completed_by from access_reviews where id = ?::uuid for update',
          [request.params.id],
        )
        if (!review) throw KRN.NOT_FOUND({ what: 'access review' })
        if (review.status !== 'open') throw GOV.ACCESS_REVIEW_CLOSED({ id: review.id })
        const items = await tx.sql<ItemRow>(`select ${ITEM_COLS} from access_review_items where review_id = ?::uuid`, [
          review.id,
        ])
        const ended: string[] = []
        const decided: Array<{ item: string; kind: string; label: string; decision: string }> = []
        for (const d of request.body.decisions) {
          const item = items.find((i) => i.id === d.itemId)
          if (!item) throw KRN.NOT_FOUND({ what: `item ${d.itemId} of this review` })
          if (item.decision) throw KRN.CONFLICT({ reason: `item ${item.id} was decided already (${item.decision})` })
          if (d.decision === 'remove') {
            if (item.kind === 'membership') {
              const userId = item.detail.userId!
              if (userId === p.userId) throw KRN.CONFLICT({ reason: 'you cannot remove yourself' })
              const role = item.detail.role ?? ''
              const removed = await auditedWrite(tx, {
                write: { sql: 'delete from memberships where id = ?::uuid returning id', params: [item.subject_id] },
                auditOrg: p.orgId,
                audit: {
                  ...meta,
                  action: 'membership.removed',
                  target: { kind: 'user', id: userId },
                  data: { role, accessReview: review.id },
                },
                events: [kernelEvent('kernel.membership.removed', `user/${userId}`, { userId, role })],
              })
              if (removed.length) ended.push(...(await revokeMemberAccess(tx, p.orgId, userId, { apiKeys: true })))
            } else {
              const id = item.subject_id
              await auditedWrite(tx, {
                write: {
                  sql: 'update api_keys set revoked_at = now() where id = ?::uuid and revoked_at is null returning id',
                  params: [id],
                },
                auditOrg: p.orgId,
                audit: {
                  ...meta,
                  action: 'api_key.revoked',
                  target: { kind: 'api_key', id },
                  data: { accessReview: review.id },
                },
                events: [kernelEvent('kernel.api_key.revoked', `api_key/${id}`, { apiKeyId: id })],
              })
            }
          }
          await tx.sql(
            'update access_review_items set decision = ?, decided_by = ?, decided_at = ?::timestamptz where id = ?::uuid',
            [d.decision, by, now, item.id],
          )
          item.decision = d.decision
          item.decided_by = by
          item.decided_at = new Date(now)
          decided.push({ item: item.id, kind: item.kind, label: item.label, decision: d.decision })
        }
        const complete = items.every((i) => i.decision)
        if (complete) {
          await tx.sql(
            `update access_reviews set status = 'completed', completed_at = ?::timestamptz, completed_by = ? where id = ?::uuid`,
            [now, by, review.id],
          )
          Object.assign(review, { status: 'completed', completed_at: new Date(now), completed_by: by })
        }
        await appendAudit(tx, p.orgId, {
          ...meta,
          action: 'governance.access_review.decided',
          target: { kind: 'access_review', id: review.id },
          data: { decisions: decided, completed: complete },
        })
        return { result: view(review, items), ended }
      })
      await announceRevoked(deps.revocation, p.orgId, ended)
      return result
    },
  )
}
