import type { KernelContext } from '../kernel-context.js'
import type { Tx } from '../db/database.js'
import type { Principal } from '../identity/principal.js'
import { KERNEL_PERMISSIONS } from '../identity/permissions.js'

const KERNEL: ReadonlySet<string> = new Set(Object.values(KERNEL_PERMISSIONS))

/**
 * Of the permissions a caller does not hold, those it may still grant: the permissions that
 * plugins installed in its tenant contribute, when the caller may install plugins (and so could
 * configure them anyway). Never a kernel permission. Returns what stays missing.
 */
export async function stillMissing(k: KernelContext, p: Principal, missing: string[], tx?: Tx): Promise<string[]> {
  if (p.orgKind !== 'tenant' || !p.permissions.has(KERNEL_PERMISSIONS.pluginsInstall)) return missing
  const contributed = new Set<string>()
  const { byId } = await k.plugins.installed(p.orgId, tx)
  for (const inst of byId.values()) {
    const v = tx ? await k.plugins.versions.byId(tx, inst.versionId) : await k.plugins.versions.get(p.orgId, inst.versionId)
    for (const perm of v?.manifest.permissions ?? []) if (!KERNEL.has(perm.name)) contributed.add(perm.name)
  }
  return missing.filter((m) => !contributed.has(m))
}
