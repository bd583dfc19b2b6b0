import type { KernelContext } from '../kernel-context.js'
import type { Tx } from '../db/database.js'
import type { Principal } from '../identity/principal.js'
import { KERNEL_PERMISSIONS } from '../identity/permissions.js'
import { internalFetchTargets, subscriptionFindings, type InternalFetchTarget } from '@trellis/plugin-sdk'
import { PLG } from '../errors.js'
import type { PluginVersion } from './versions.js'

const KERNEL: ReadonlySet<string> = new Set(Object.values(KERNEL_PERMISSIONS))

/**
 * Of the permissions a caller does not hold, those it may still grant: the permissions that
 * plugins installed in its tenant contribute, when the caller may install plugins (and so could
 * configure them anyway). Never a kernel permission. Returns what stays missing.
 */
/** What `stillMissing` reads: the tenant's installations and their versions. */
export type InstalledPlugins = { plugins: Pick<KernelContext['plugins'], 'installed' | 'versions'> }

export async function stillMissing(k: InstalledPlugins, p: Principal, missing: string[], tx?: Tx): Promise<string[]> {
  if (p.orgKind !== 'tenant' || !p.permissions.has(KERNEL_PERMISSIONS.pluginsInstall)) return missing
  const contributed = new Set<string>()
  const { byId } = await k.plugins.installed(p.orgId, tx)
  for (const inst of byId.values()) {
    const v = tx
      ? await k.plugins.versions.byId(tx, inst.versionId)
      : await k.plugins.versions.get(p.orgId, inst.versionId)
    for (const perm of v?.manifest.permissions ?? []) if (!KERNEL.has(perm.name)) contributed.add(perm.name)
  }
  return missing.filter((m) => !contributed.has(m))
}

/**
 * Capabilities no tenant may grant, whatever the version says (it may have been approved before
 * the marketplace refused them, or registered without it): `http:fetch` hosts that name
 * loopback, private, link-local or metadata destinations the operator did not allow-list, and
 * subscriptions to the platform's own event namespaces. Throws PLG_ERR_CAPABILITY_NOT_GRANTABLE.
 */
export function assertGrantable(
  k: { plugins: Pick<KernelContext['plugins'], 'egress'> },
  version: Pick<PluginVersion, 'name' | 'version' | 'manifest'>,
): void {
  const internal = internalFetchTargets(version.manifest.capabilities, egressAllows(k))
  if (internal.length) {
    const first = internal[0]!
    throw PLG.CAPABILITY_NOT_GRANTABLE({
      name: version.name,
      version: version.version,
      capability: first.capability,
      reason: `${first.entry} is a ${first.reason} destination, not allow-listed by the operator (TRELLIS_EGRESS_ALLOW)`,
    })
  }
  const reserved = subscriptionFindings(version.manifest).find((f) => f.rule === 'reserved')
  if (reserved)
    throw PLG.CAPABILITY_NOT_GRANTABLE({
      name: version.name,
      version: version.version,
      capability: `events:subscribe:${reserved.pattern}`,
      reason: reserved.message,
    })
}

/**
 * The operator's egress allow-list as a test for an internal fetch target: a name the operator
 * allow-listed by name, or an address (or `localhost`, by the address it stands for) the egress
 * guard would connect to.
 */
export function egressAllows(k: {
  plugins: Pick<KernelContext['plugins'], 'egress'>
}): (target: InternalFetchTarget) => boolean {
  return (target) => {
    const name = target.entry.trim().toLowerCase().replace(/:\d+$/, '')
    if (k.plugins.egress.allowsName(name)) return true
    return target.address !== null && k.plugins.egress.allowsAddress(target.address)
  }
}
