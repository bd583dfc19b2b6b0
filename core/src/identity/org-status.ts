import type { Database } from '../db/database.js'
import { KRN } from '../errors.js'

interface Status {
  orgStatus: string | null
  partnerStatus: string | null
}

interface Entry extends Status {
  at: number
}

/**
 * Remembers for a moment whether an organisation (and its partner) is suspended, so that
 * routes that touch no table still refuse a suspended tenant. Every database transaction
 * re-reads the status itself, and a suspension made in this process is seen at once.
 */
export class OrgStatusCache {
  private entries = new Map<string, Entry>()
  private reading = new Map<string, Promise<Status>>()

  constructor(
    private readonly db: Database,
    private readonly ttlMs = 1000,
  ) {}

  /**
   * Throws when the organisation (or its partner) is suspended. Statuses are re-read after
   * `ttlMs`; concurrent requests share one read.
   */
  async assertActive(orgId: string): Promise<void> {
    if (this.checkKnown(orgId)) return
    let read = this.reading.get(orgId)
    if (!read) {
      // A suspension seen while this read runs (forget) wins over what it returns.
      const current = (): boolean => this.reading.get(orgId) === read
      read = this.db
        .inOrg(orgId, async (_tx, s) => s)
        .then((status) => {
          if (current()) this.entries.set(orgId, { ...status, at: Date.now() })
          return status
        })
        .finally(() => {
          if (current()) this.reading.delete(orgId)
        })
      this.reading.set(orgId, read)
    }
    assertStatus(await read)
  }

  /** Without waiting: true when the organisation is known to be active, throws when known to be suspended, false when it must be read. */
  checkKnown(orgId: string): boolean {
    const e = this.entries.get(orgId)
    if (!e || Date.now() - e.at > this.ttlMs) return false
    assertStatus(e)
    return true
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

export function assertStatus(s: { orgStatus: string | null; partnerStatus: string | null }): void {
  if (s.orgStatus === 'suspended') throw KRN.TENANT_SUSPENDED()
  if (s.partnerStatus === 'suspended') throw KRN.PARTNER_SUSPENDED()
}
