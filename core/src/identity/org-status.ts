import type { Database } from '../db/database.js'
import { KRN } from '../errors.js'

interface Entry {
  orgStatus: string | null
  partnerStatus: string | null
  at: number
}

/**
 * Remembers for a moment whether an organisation (and its partner) is suspended, so that
 * routes that touch no table still refuse a suspended tenant. Every database transaction
 * re-reads the status itself, and a suspension made in this process is seen at once.
 */
export class OrgStatusCache {
  private entries = new Map<string, Entry>()

  constructor(
    private readonly db: Database,
    private readonly ttlMs = 1000,
  ) {}

  async assertActive(orgId: string): Promise<void> {
    let e = this.entries.get(orgId)
    if (!e || Date.now() - e.at > this.ttlMs) {
      const status = await this.db.inOrg(orgId, async (_tx, s) => s)
      e = { ...status, at: Date.now() }
      this.entries.set(orgId, e)
    }
    assertStatus(e)
  }

  forget(orgId?: string): void {
    if (orgId) this.entries.delete(orgId)
    else this.entries.clear()
  }
}

export function assertStatus(s: { orgStatus: string | null; partnerStatus: string | null }): void {
  if (s.orgStatus === 'suspended') throw KRN.TENANT_SUSPENDED()
  if (s.partnerStatus === 'suspended') throw KRN.PARTNER_SUSPENDED()
}
