import type { Database } from '../db/database.js'
import { type Budget, budgetsFor } from './budgets.js'
import { readTenantAi, type TenantAi } from './tenant-ai.js'

/** What a call needs to know of its tenant before the model, when no budget applies to it. */
export interface TenantGovernance {
  /** The tenant and its partner are active. */
  active: boolean
  settings: TenantAi
  /** The budgets that apply (tenant, partner, installation); a call with any reserves on them in a transaction. */
  budgets: Budget[]
}

/**
 * Each process keeps, per tenant and installation, its AI settings, its status and the budgets
 * that apply, for as long as the model registry keeps its list (500 ms; 5 s with a change feed),
 * and drops them all when the registry is told of a change — a settings or budget change in any
 * process (`ModelRegistry.forget`). A call of a tenant with no budget then needs no transaction
 * before the model; a tenant with budgets reserves on them in one short transaction (the
 * reservation itself is atomic per budget row, against the row's usage as it is then).
 */
export class TenantAiCache {
  private readonly entries = new Map<string, { at: number; value: Promise<TenantGovernance> }>()

  constructor(
    private readonly db: Pick<Database, 'inOrg'>,
    private readonly ttlMs: number,
    private readonly clock: () => number = Date.now,
  ) {}

  forget(): void {
    this.entries.clear()
  }

  get(tenantId: string, installationId: string | null | undefined): Promise<TenantGovernance> {
    const key = `${tenantId}/${installationId ?? ''}`
    const now = this.clock()
    const hit = this.entries.get(key)
    if (hit && now - hit.at <= this.ttlMs) return hit.value
    const value = this.db.inOrg(tenantId, async (tx, status) => {
      const settings = await readTenantAi(tx, tenantId)
      const budgets = await budgetsFor(tx, tenantId, settings.partnerId, installationId)
      return {
        active: status.orgStatus === 'active' && status.partnerStatus === 'active',
        settings,
        budgets,
      }
    })
    this.entries.set(key, { at: now, value })
    if (this.entries.size > 10_000) this.entries.delete(this.entries.keys().next().value as string)
    // A failed read is not kept.
    value.catch(() => {
      if (this.entries.get(key)?.value === value) this.entries.delete(key)
    })
    return value
  }
}
