import type { Tx } from '../db/database.js'
import { PLG } from '../errors.js'
import type { Installation } from './installations.js'
import type { PluginVersion, PluginVersions } from './versions.js'

/**
 * Which version of an installation may run: an active installation's approved, unblocked
 * version — or, for a workflow instance that started on an older one, that version while it is
 * not blocked.
 */
export class ServableVersions {
  constructor(readonly versions: PluginVersions) {}

  /** The installation's version, refusing a disabled installation or a blocked version. */
  async versionOf(tx: Tx, inst: Installation): Promise<PluginVersion> {
    active(inst)
    return servable(inst, await this.versions.byId(tx, inst.versionId))
  }

  /** {@link versionOf} outside a transaction: a cached version costs no round trip. */
  async currentVersion(tenantId: string, inst: Installation): Promise<PluginVersion> {
    active(inst)
    return servable(inst, await this.versions.get(tenantId, inst.versionId))
  }

  /** The installation's version in or out of a transaction. */
  of(tenantId: string, tx: Tx | undefined, inst: Installation): Promise<PluginVersion> {
    return tx ? this.versionOf(tx, inst) : this.currentVersion(tenantId, inst)
  }

  /** A specific version of an installation's plugin (refusing a disabled installation or a blocked version). */
  async pinned(tenantId: string, tx: Tx | undefined, inst: Installation, versionId: string): Promise<PluginVersion> {
    active(inst)
    const v = tx ? await this.versions.byId(tx, versionId) : await this.versions.get(tenantId, versionId)
    if (!v || v.name !== inst.plugin) throw PLG.VERSION_NOT_FOUND({ name: inst.plugin })
    if (v.status === 'blocked') throw PLG.VERSION_BLOCKED({ name: v.name, version: v.version })
    return v
  }
}

function active(inst: Installation): void {
  if (inst.status !== 'active') throw PLG.INSTALLATION_DISABLED({ name: inst.plugin })
}

function servable(inst: Installation, v: PluginVersion | undefined): PluginVersion {
  if (!v) throw PLG.VERSION_NOT_FOUND({ name: inst.plugin })
  if (v.status === 'blocked') throw PLG.VERSION_BLOCKED({ name: v.name, version: v.version })
  if (v.status !== 'approved') throw PLG.VERSION_NOT_APPROVED({ name: v.name, version: v.version, status: v.status })
  return v
}
