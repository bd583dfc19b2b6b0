import type { FastifyRequest } from 'fastify'
import type { KernelContext } from '../kernel-context.js'
import { AUTH, KRN } from '../errors.js'
import { principalOf } from '../http/guards.js'
import { KERNEL_PERMISSIONS as P } from '../identity/permissions.js'
import type { Principal } from '../identity/principal.js'
import { type Database, PLATFORM_ORG, type Tx } from '../db/database.js'
import type { Installation } from './installations.js'
import { type HistoryEntry, listDiff, loadInstallation } from './lifecycle.js'
import type { PluginVersion } from './versions.js'

/** What showing an installation needs: its tenant's transaction and the version registry. */
export type InstallationViewDeps = { db: Pick<Database, 'inOrg'>; plugins: Pick<KernelContext['plugins'], 'versions'> }

/**
 * The tenant a request acts on: the caller's own, or — for platform admins and the partner
 * managing it — the one named by `?tenantId=`. Anyone else naming another tenant gets 404.
 */
export async function targetTenant(
  k: { db: Pick<Database, 'unscoped'> },
  p: Principal,
  tenantId: string | undefined,
): Promise<string> {
  if (!p.permissions.has(P.pluginsInstall) && !p.permissions.has(P.platformAdmin))
    throw AUTH.FORBIDDEN({ permission: P.pluginsInstall })
  if (!tenantId || tenantId === p.orgId) {
    if (p.orgKind !== 'tenant') throw KRN.VALIDATION_FAILED({ reason: 'name the tenant with ?tenantId=' })
    return p.orgId
  }
  const [t] = await k.db.unscoped((tx) =>
    tx.sql<{ id: string; partner_id: string | null }>('select id, partner_id from tenants where id = ?::uuid', [
      tenantId,
    ]),
  )
  const allowed =
    t &&
    ((p.orgKind === 'platform' && p.orgId === PLATFORM_ORG) || (p.orgKind === 'partner' && t.partner_id === p.orgId))
  if (!allowed) throw KRN.NOT_FOUND({ what: 'tenant' })
  return t.id
}

/** Routes that may read but not change installations: tenant members with audit.read see them too. */
export async function readerTenant(
  k: { db: Pick<Database, 'unscoped'> },
  request: FastifyRequest,
  tenantId: string | undefined,
): Promise<string> {
  const p = principalOf(request)
  if (!tenantId && p.orgKind === 'tenant' && (p.permissions.has(P.auditRead) || p.permissions.has(P.pluginsInstall)))
    return p.orgId
  return targetTenant(k, p, tenantId)
}

/** An installation as the API shows it: never its secrets, with its history and any upgrade awaiting consent. */
export async function installationView(k: InstallationViewDeps, inst: Installation) {
  return k.db.inOrg(inst.tenantId, async (tx) => {
    const full = await loadInstallation(tx, inst.id).catch(() => undefined)
    return full
      ? viewOf(tx, k.plugins.versions, full, full.history, full.pendingVersionId)
      : viewOf(tx, k.plugins.versions, inst, [], null)
  })
}

/**
 * {@link installationView} of an installation already read in full (its history and pending
 * version included), inside the transaction that read it: no second transaction after a write.
 * The view is built field by field — a write's answer, so no rest-and-spread copies of the row.
 */
export async function viewOf(
  tx: Tx,
  versions: Pick<KernelContext['plugins']['versions'], 'byId'>,
  inst: Installation,
  history: HistoryEntry[],
  pendingVersionId: string | null,
  current?: PluginVersion,
) {
  const v = current ?? (await versions.byId(tx, inst.versionId))
  const pending = pendingVersionId ? await versions.byId(tx, pendingVersionId) : undefined
  return {
    id: inst.id,
    tenantId: inst.tenantId,
    plugin: inst.plugin,
    mount: inst.mount,
    versionId: inst.versionId,
    capabilities: inst.capabilities,
    settings: inst.settings,
    status: inst.status,
    installedBy: inst.installedBy,
    createdAt: inst.createdAt,
    updatedAt: inst.updatedAt,
    history,
    version: v?.version ?? 'unknown',
    secrets: inst.secretNames,
    pendingUpgrade:
      pending && v
        ? {
            versionId: pending.id,
            version: pending.version,
            capabilities: listDiff(v.manifest.capabilities, pending.manifest.capabilities),
          }
        : null,
  }
}
