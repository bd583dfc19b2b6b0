import type { Database, TransactionSource, Tx } from '../db/database.js'
import { INSTALLATION_COLS, toInstallation, type Installation, type InstallationRow } from './installations.js'

/** A tenant's installations, by id, plugin name and mount. */
export interface TenantPlugins {
  at: number
  byId: Map<string, Installation>
  byPlugin: Map<string, Installation>
  byMount: Map<string, Installation>
}

/**
 * The installations of each tenant, cached briefly in this process (other processes' changes
 * show within the time to live). A load overtaken by a change or by a newer load is not kept.
 */
export class TenantInstallations {
  private readonly tenants = new Map<string, Promise<TenantPlugins>>()
  private readonly settled = new Map<string, TenantPlugins>()
  private readonly generations = new Map<string, number>()

  constructor(
    private readonly db: Pick<Database, 'inOrg'>,
    private readonly ttlMs: number,
  ) {}

  /** Forgets what is cached about the tenant (after an install, update or uninstall). */
  forget(tenantId: string): void {
    this.tenants.delete(tenantId)
    this.settled.delete(tenantId)
    this.generations.set(tenantId, (this.generations.get(tenantId) ?? 0) + 1)
  }

  /**
   * The tenant's installations, active or disabled; read through `tx` when given, else in a
   * transaction of `via` (the request pool by default; background work passes its own pool).
   */
  async of(tenantId: string, tx?: Tx, via: Pick<TransactionSource, 'inOrg'> = this.db): Promise<TenantPlugins> {
    const fresh = this.settled.get(tenantId)
    if (fresh && Date.now() - fresh.at < this.ttlMs) return fresh
    let entry = this.tenants.get(tenantId)
    // Inside a transaction, never wait on a load that needs another connection: on the embedded
    // database (one connection) that load waits for this very transaction.
    if (entry && !tx) {
      const got = await entry.catch(() => undefined)
      if (got && Date.now() - got.at < this.ttlMs) return got
      if (this.tenants.get(tenantId) === entry) this.tenants.delete(tenantId)
    }
    const generation = (this.generations.get(tenantId) ?? 0) + 1
    this.generations.set(tenantId, generation)
    entry = (async () => {
      const load = (t: Tx) => t.sql<InstallationRow>(`select ${INSTALLATION_COLS} from plugin_installations`)
      const rows = tx ? await load(tx) : await via.inOrg(tenantId, load)
      const byId = new Map<string, Installation>()
      const byPlugin = new Map<string, Installation>()
      const byMount = new Map<string, Installation>()
      for (const r of rows) {
        const inst = toInstallation(r)
        byId.set(inst.id, inst)
        byPlugin.set(inst.plugin, inst)
        byMount.set(inst.mount, inst)
      }
      const loaded = { at: Date.now(), byId, byPlugin, byMount }
      if (this.generations.get(tenantId) === generation) this.settled.set(tenantId, loaded)
      return loaded
    })()
    this.tenants.set(tenantId, entry)
    entry.catch(() => this.tenants.get(tenantId) === entry && this.tenants.delete(tenantId))
    return entry
  }
}
