/**
 * What retention applies to: four kinds of kernel record, and every collection of a tenant's
 * installed plugins (`<plugin>/<collection>`). The platform may also bound every collection at
 * once under {@link ALL_COLLECTIONS}.
 */
import type { Tx } from '../db/database.js'

/** Kernel records retention purges, and what purging them means. */
export const KERNEL_TARGETS = Object.freeze({
  /** Plugin invocation transcripts, inputs and log lines (the invocation's metrics stay). */
  'invocation-logs': 'plugin_invocations',
  /** AI interaction text: prompts, answers, retrieved chunks and citations (usage and cost stay). */
  'ai-interactions': 'ai_records',
  /** Finished webhook deliveries and their attempts (pending ones are never purged). */
  'webhook-deliveries': 'webhook_deliveries',
  /** Audit entry payloads beyond the chain's own fields (the entry and its hash linkage stay). */
  'audit-payloads': 'audit_log',
} as const)

export type KernelTarget = keyof typeof KERNEL_TARGETS

/** The platform-wide bound of every plugin collection (a collection's own bound wins). */
export const ALL_COLLECTIONS = 'collections'

/** A tenant's retention target: a kernel record kind or one plugin collection. */
export type RetentionTarget =
  | { kind: 'kernel'; name: KernelTarget }
  | { kind: 'collection'; plugin: string; collection: string }

export const isKernelTarget = (t: string): t is KernelTarget => Object.hasOwn(KERNEL_TARGETS, t)

/** The name of a target as the API shows it. */
export function targetName(t: RetentionTarget): string {
  return t.kind === 'kernel' ? t.name : `${t.plugin}/${t.collection}`
}

/** The collections of the tenant's installed plugins, read in the tenant's transaction. */
export async function tenantCollections(
  tx: Tx,
): Promise<Array<{ plugin: string; collection: string; schema: unknown; indexes?: unknown }>> {
  const rows = await tx.sql<{
    plugin: string
    collections: Record<string, { schema?: unknown; indexes?: unknown }> | null
  }>(
    `select i.plugin, v.manifest -> 'collections' as collections
       from plugin_installations i join plugin_versions v on v.id = i.version_id order by i.plugin`,
  )
  return rows.flatMap((r) =>
    Object.entries(r.collections ?? {}).map(([collection, c]) => ({
      plugin: r.plugin,
      collection,
      schema: c.schema,
      indexes: c.indexes,
    })),
  )
}

/** Every target of the tenant: the kernel's, then its plugins' collections. */
export async function tenantTargets(tx: Tx): Promise<RetentionTarget[]> {
  const kernel = (Object.keys(KERNEL_TARGETS) as KernelTarget[]).map((name) => ({ kind: 'kernel' as const, name }))
  const collections = (await tenantCollections(tx)).map((c) => ({
    kind: 'collection' as const,
    plugin: c.plugin,
    collection: c.collection,
  }))
  return [...kernel, ...collections]
}
