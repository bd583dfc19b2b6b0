import type { Database } from '../db/database.js'
import { AUTH, KRN } from '../errors.js'
import { ACCESS_TOKEN_TTL_SECONDS } from './tokens.js'

interface Status {
  orgStatus: string | null
  partnerStatus: string | null
  /** Session families of this organisation ended while an access token issued for them may still be unexpired. */
  revoked: ReadonlySet<string>
}

// Sessions ended longer ago than an access token lives (plus clock slack) have no token left to refuse.
const REVOKED_WINDOW_SECONDS = ACCESS_TOKEN_TTL_SECONDS + 120

interface Entry extends Status {
  at: number
}

/**
 * Remembers for a moment whether an organisation (and its partner) is suspended, so that
 * routes that touch no table still refuse a suspended tenant. Every database transaction
 * re-reads the status itself, and a suspension made in this process is seen at once.
 *
 * With the status it reads which of the organisation's sessions were ended recently (sign-out,
 * a refresh token replayed, the member removed or demoted): an access token of such a session
 * is refused by every process within `ttlMs`, and at once by the process that ended it.
 */
export class OrgStatusCache {
  private entries = new Map<string, Entry>()
  private reading = new Map<string, Promise<Status>>()

  constructor(
    private readonly db: Pick<Database, 'inOrg'>,
    private readonly ttlMs = 1000,
    private readonly now: () => number = Date.now,
  ) {}

  /**
   * Throws when the organisation (or its partner) is suspended. Statuses are re-read after
   * `ttlMs`; concurrent requests share one read.
   */
  async assertActive(orgId: string, sessionId?: string): Promise<void> {
    if (this.checkKnown(orgId, sessionId)) return
    const status = await (this.reading.get(orgId) ?? this.read(orgId))
    assertStatus(status)
    assertSessionLive(status, sessionId)
  }

  /**
   * Without waiting: true when the organisation is known to be active, throws when known to be
   * suspended, false when it must be read. An entry past half its life is read again in the
   * background meanwhile, so that under a steady stream of requests the entry is renewed before
   * it expires and no request waits for the read (a read queued for a connection behind every
   * request of a busy pool would hold all the organisation's requests arriving meanwhile).
   */
  checkKnown(orgId: string, sessionId?: string): boolean {
    const e = this.entries.get(orgId)
    if (!e) return false
    const age = this.now() - e.at
    if (age > this.ttlMs) return false
    if (age > this.ttlMs / 2 && !this.reading.has(orgId)) this.read(orgId).catch(() => undefined)
    assertStatus(e)
    assertSessionLive(e, sessionId)
    return true
  }

  /** Reads the organisation's status and its recently ended sessions, and keeps them. */
  private read(orgId: string): Promise<Status> {
    // A suspension seen while this read runs (forget) wins over what it returns.
    const current = (): boolean => this.reading.get(orgId) === read
    const read: Promise<Status> = this.db
      .inOrg(orgId, async (tx, s) => {
        const rows = await tx.sql<{ family_id: string }>(
          `select distinct family_id from sessions where tenant_id = ?::uuid and revoked_at > now() - interval '${REVOKED_WINDOW_SECONDS} seconds'`,
          [orgId],
        )
        return { ...s, revoked: new Set(rows.map((r) => r.family_id)) }
      })
      .then((status) => {
        if (current()) this.entries.set(orgId, { ...status, at: this.now() })
        return status
      })
      .finally(() => {
        if (current()) this.reading.delete(orgId)
      })
    this.reading.set(orgId, read)
    return read
  }

  forget(orgId?: string): void {
    if (orgId) {
      this.entries.delete(orgId)
      this.reading.delete(orgId)
    } else {
      this.entries.clear()
      this.reading.clear()
    }
  }
}

function assertSessionLive(s: Status, sessionId: string | undefined): void {
  if (sessionId && s.revoked.has(sessionId)) throw AUTH.INVALID_TOKEN({ reason: 'the session has ended' })
}

export function assertStatus(s: { orgStatus: string | null; partnerStatus: string | null }): void {
  if (s.orgStatus === 'suspended') throw KRN.TENANT_SUSPENDED()
  if (s.partnerStatus === 'suspended') throw KRN.PARTNER_SUSPENDED()
}
