/**
 * Periodic access review (docs/governance.md, "Access review"): once a day (by the kernel's
 * clock) each active tenant with memberships or API keys not used for {@link STALE_DAYS} days,
 * and no review open, gets a review listing them. Its admins (users.manage) keep or remove each
 * one; removing ends the membership with its sessions and keys, or revokes the key. Everything is
 * audited, and the review stays as evidence.
 */
import { v7 as uuidv7 } from 'uuid'
import type { Logger } from 'pino'
import type { Tx, TransactionSource } from '../db/database.js'
import type { OrgTx } from '../http/route-deps.js'
import type { WorkflowClock } from '../workflows/clock.js'
import { auditedWrite } from '../audit/audited-write.js'
import { kernelEvent } from '../events/outbox.js'

/** Not used for this many days: up for review. */
export const STALE_DAYS = 90
/** Days the admins have to decide (shown as the review's due date). */
export const REVIEW_DUE_DAYS = 14
const DAY = 86_400_000

export interface StaleAccess {
  kind: 'membership' | 'api_key'
  subjectId: string
  label: string
  detail: Record<string, unknown>
  lastUsedAt: string | null
}

/** Memberships and live API keys of the transaction's tenant not used since `before`. */
export async function staleAccess(tx: Tx, before: Date): Promise<StaleAccess[]> {
  const members = await tx.sql<{ id: string; user_id: string; email: string; role: string; last: Date | null }>(
    `select m.id::text as id, m.user_id::text as user_id, u.email, r.name as role,
            (select max(greatest(s.created_at, coalesce(s.used_at, s.created_at))) from sessions s where s.user_id = m.user_id) as last
       from memberships m join users u on u.id = m.user_id join roles r on r.id = m.role_id
      where coalesce((select max(greatest(s.created_at, coalesce(s.used_at, s.created_at))) from sessions s where s.user_id = m.user_id), m.created_at) < ?::timestamptz
      order by u.email`,
    [before.toISOString()],
  )
  const keys = await tx.sql<{ id: string; name: string; permissions: string[]; last_used_at: Date | null }>(
    `select id::text as id, name, permissions, last_used_at from api_keys
      where revoked_at is null and (expires_at is null or expires_at > ?::timestamptz)
        and coalesce(last_used_at, created_at) < ?::timestamptz
      order by created_at, id`,
    [before.toISOString(), before.toISOString()],
  )
  const iso = (t: Date | null) => (t === null ? null : new Date(t).toISOString())
  return [
    ...members.map(
      (m): StaleAccess => ({
        kind: 'membership',
        subjectId: m.id,
        label: m.email,
        detail: { userId: m.user_id, role: m.role },
        lastUsedAt: iso(m.last),
      }),
    ),
    ...keys.map(
      (k): StaleAccess => ({
        kind: 'api_key',
        subjectId: k.id,
        label: k.name,
        detail: { permissions: k.permissions },
        lastUsedAt: iso(k.last_used_at),
      }),
    ),
  ]
}

/**
 * Opens a review for the transaction's tenant when it has stale access and had no review in the
 * last `staleDays` days;
 * returns its id, or undefined when there was nothing to do.
 */
export async function openAccessReview(
  tx: Tx,
  tenantId: string,
  now: Date,
  staleDays = STALE_DAYS,
): Promise<string | undefined> {
  // One review per period: none while one is open, nor within `staleDays` of the last one opened.
  const [recent] = await tx.sql(
    `select 1 from access_reviews where status = 'open' or opened_at > ?::timestamptz limit 1`,
    [new Date(now.getTime() - staleDays * DAY).toISOString()],
  )
  if (recent) return undefined
  const stale = await staleAccess(tx, new Date(now.getTime() - staleDays * DAY))
  if (!stale.length) return undefined
  const id = uuidv7()
  await tx.sql(
    `insert into access_reviews (id, stale_days, opened_at, due_at) values (?::uuid, ?, ?::timestamptz, ?::timestamptz)`,
    [id, staleDays, now.toISOString(), new Date(now.getTime() + REVIEW_DUE_DAYS * DAY).toISOString()],
  )
  await tx.sql(
    `insert into access_review_items (id, review_id, kind, subject_id, label, detail, last_used_at)
     select i.id, ?::uuid, i.kind, i.subject_id, i.label, i.detail, i.last_used_at
       from jsonb_to_recordset(?::jsonb) as i(id uuid, kind text, subject_id uuid, label text, detail jsonb, last_used_at timestamptz)`,
    [
      id,
      JSON.stringify(
        stale.map((s) => ({
          id: uuidv7(),
          kind: s.kind,
          subject_id: s.subjectId,
          label: s.label,
          detail: s.detail,
          last_used_at: s.lastUsedAt,
        })),
      ),
    ],
  )
  const counts = {
    memberships: stale.filter((s) => s.kind === 'membership').length,
    apiKeys: stale.filter((s) => s.kind === 'api_key').length,
  }
  // The event lets a tenant tell its admins (a webhook to their ticketing or chat).
  await auditedWrite(tx, {
    auditOrg: tenantId,
    audit: {
      actor: { kind: 'system', id: 'access-review' },
      action: 'governance.access_review.opened',
      target: { kind: 'access_review', id },
      data: { staleDays, ...counts },
    },
    events: [
      kernelEvent('kernel.access_review.opened', `access_review/${id}`, {
        reviewId: id,
        staleDays,
        ...counts,
        dueAt: new Date(now.getTime() + REVIEW_DUE_DAYS * DAY).toISOString(),
      }),
    ],
  })
  return id
}

export interface AccessReviewJobDeps {
  db: TransactionSource
  orgTx: OrgTx
  clock: WorkflowClock
  logger?: Logger
  staleDays?: number
}

/** The daily pass over every active tenant (worker work). */
export class AccessReviewJob {
  private stop?: () => void

  constructor(private readonly deps: AccessReviewJobDeps) {}

  start(everyMs = DAY): void {
    this.stop = this.deps.clock.every(everyMs, () => this.run().then(() => undefined))
  }

  close(): void {
    this.stop?.()
  }

  /** Opens the reviews that are due now; resolves to the ids opened. */
  async run(): Promise<string[]> {
    const now = new Date(this.deps.clock.now())
    const tenants = await this.deps.db.inOrg(null, (tx) =>
      tx.sql<{ id: string }>(`select id from tenants where status = 'active' order by id`),
    )
    const opened: string[] = []
    for (const { id } of tenants) {
      try {
        const review = await this.deps.orgTx(id, (tx) => openAccessReview(tx, id, now, this.deps.staleDays))
        if (review) opened.push(review)
      } catch (err) {
        this.deps.logger?.error({ err, tenantId: id }, 'opening an access review failed; the next pass retries')
      }
    }
    return opened
  }
}
