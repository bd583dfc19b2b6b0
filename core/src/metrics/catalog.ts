/**
 * Which metrics a caller may see in their tenant: those declared by the tenant's installed
 * plugins whose source collections are available (the source plugin installed and, for another
 * plugin's collections, the declaring plugin's `metrics:read:<plugin>` consented), and whose
 * permission the caller holds.
 */
import { KERNEL_PERMISSIONS } from '../identity/permissions.js'
import type { Installation } from '../plugins/installations.js'
import type { PluginVersion } from '../plugins/versions.js'
import type { CollectionName } from './compiler.js'
import type { MetricDeclaration, ResolvedMetric } from './types.js'
import { KERNEL_METRICS, KERNEL_SOURCE } from './kernel-metrics.js'

/** A metric whose sources are available, with them resolved. */
export interface AvailableMetric extends ResolvedMetric {
  source: CollectionName
  /** Every collection a dimension may join, resolved. */
  joins: Map<string, CollectionName>
  /** Permissions the source plugin contributes (an installer may grant them). */
  sourcePermissions: string[]
}

/** What the catalog reads: the tenant's installations and their current versions. */
export interface InstalledSource {
  installed(tenantId: string): Promise<{ byPlugin: Map<string, Installation> }>
  currentVersion(tenantId: string, inst: Installation): Promise<PluginVersion>
}

/** Splits `@scope/name:collection` (or a bare collection of `own`). */
export function collectionName(ref: string, own: string): CollectionName {
  const colon = ref.lastIndexOf(':')
  return colon < 0
    ? { plugin: own, collection: ref }
    : { plugin: ref.slice(0, colon), collection: ref.slice(colon + 1) }
}

/** The tenant's active installations and the manifests of their current versions, by plugin. */
export async function activeManifests(
  src: InstalledSource,
  tenantId: string,
): Promise<{ active: Installation[]; manifests: Map<string, PluginVersion['manifest']> }> {
  const { byPlugin } = await src.installed(tenantId)
  const manifests = new Map<string, PluginVersion['manifest']>()
  const active = [...byPlugin.values()].filter((i) => i.status === 'active')
  await Promise.all(
    active.map(async (inst) => manifests.set(inst.plugin, (await src.currentVersion(tenantId, inst)).manifest)),
  )
  return { active, manifests }
}

/** Every metric of the tenant whose sources are available, by name (`<mount>.<metric>`). */
export async function availableMetrics(src: InstalledSource, tenantId: string): Promise<Map<string, AvailableMetric>> {
  const { active, manifests } = await activeManifests(src, tenantId)
  const out = new Map<string, AvailableMetric>()
  for (const [metric, declaration] of Object.entries(KERNEL_METRICS))
    out.set(`kernel.${metric}`, {
      name: `kernel.${metric}`,
      plugin: KERNEL_SOURCE,
      metric,
      declaration,
      source: { plugin: KERNEL_SOURCE, collection: declaration.collection },
      joins: new Map(),
      sourcePermissions: [],
    })
  for (const inst of active) {
    const manifest = manifests.get(inst.plugin)!
    for (const [metric, decl] of Object.entries(manifest.metrics ?? {}) as Array<[string, MetricDeclaration]>) {
      const readable = (c: CollectionName) =>
        (c.plugin === inst.plugin || inst.capabilities.includes(`metrics:read:${c.plugin}`)) &&
        !!manifests.get(c.plugin)?.collections?.[c.collection]
      const source = collectionName(decl.collection, inst.plugin)
      if (!readable(source)) continue
      const sourcePermissions = (manifests.get(source.plugin)?.permissions ?? []).map((p) => p.name)
      if (!sourcePermissions.includes(decl.permission)) continue
      const joins = new Map<string, CollectionName>()
      let ok = true
      for (const d of Object.values(decl.dimensions ?? {})) {
        if (typeof d !== 'object') continue
        const c = collectionName(d.collection, inst.plugin)
        if (!readable(c)) ok = false
        joins.set(d.collection, c)
      }
      if (!ok) continue
      out.set(`${inst.mount}.${metric}`, {
        name: `${inst.mount}.${metric}`,
        plugin: inst.plugin,
        metric,
        declaration: decl,
        source,
        joins,
        sourcePermissions,
      })
    }
  }
  return out
}

/**
 * Whether a caller holding `held` may read the metric: they hold its permission, or they may
 * install plugins (and so could grant themselves anything the source plugin contributes).
 */
export function mayRead(held: ReadonlySet<string>, m: AvailableMetric): boolean {
  if (held.has(m.declaration.permission)) return true
  return held.has(KERNEL_PERMISSIONS.pluginsInstall) && m.sourcePermissions.includes(m.declaration.permission)
}
