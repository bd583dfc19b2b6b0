import semver from 'semver'
import type { Tx } from '../db/database.js'
import type { KernelContext } from '../kernel-context.js'
import { KRN, PLG } from '../errors.js'
import type { AuditRecord } from '../audit/audit-log.js'
import { auditedWrite } from '../audit/audited-write.js'
import { kernelEvent } from '../events/outbox.js'
import {
  checkConsent,
  defaultMount,
  insertInstallation,
  INSTALLATION_COLS,
  openSecrets,
  splitSettings,
  toInstallation,
  type Installation,
  type InstallationRow,
} from './installations.js'
import { orgTx } from '../kernel-context.js'
import type { PluginVersion } from './versions.js'
import { assertGrantable } from './grantable.js'

/** A version a tenant may install now: approved, and not blocked. */
export async function installableVersion(
  k: KernelContext,
  tx: Tx,
  plugin: string,
  version: string,
): Promise<PluginVersion> {
  const v = await k.plugins.versions.find(tx, plugin, version)
  if (!v) throw PLG.VERSION_NOT_FOUND({ name: plugin, version })
  if (v.status === 'blocked') throw PLG.VERSION_BLOCKED({ name: v.name, version: v.version })
  if (v.status !== 'approved') throw PLG.VERSION_NOT_APPROVED({ name: v.name, version: v.version, status: v.status })
  assertGrantable(k, v)
  return v
}

/** What changes between two capability (or permission) lists. */
export function listDiff(from: readonly string[], to: readonly string[]): { added: string[]; removed: string[] } {
  const a = new Set(from)
  const b = new Set(to)
  return { added: [...b].filter((c) => !a.has(c)), removed: [...a].filter((c) => !b.has(c)) }
}

/**
 * The version's dependencies must be installed (and active) in the tenant with versions in the
 * ranges it states; the error names what to install, and the newest approved version that fits.
 */
export async function checkDependencies(
  k: KernelContext,
  tx: Tx,
  tenantId: string,
  version: PluginVersion,
): Promise<void> {
  const deps = Object.entries(version.manifest.dependencies ?? {})
  if (deps.length === 0) return
  const installed = (await k.plugins.installed(tenantId, tx)).byPlugin
  for (const [name, range] of deps) {
    const inst = installed.get(name)
    const current = inst ? await k.plugins.versions.byId(tx, inst.versionId) : undefined
    if (
      inst &&
      inst.status === 'active' &&
      current &&
      semver.satisfies(current.version, range, { includePrerelease: true })
    )
      continue
    const candidates = await tx.sql<{ version: string }>(
      `select version from plugin_versions where name = ? and status = 'approved'`,
      [name],
    )
    const best = semver.maxSatisfying(
      candidates.map((c) => c.version),
      range,
    )
    throw PLG.DEPENDENCY_MISSING({
      plugin: version.name,
      dependency: name,
      range,
      installed: current?.version ?? null,
      available: best,
    })
  }
}

/** Installed plugins whose version depends on `plugin` (an uninstall would break them). */
export async function dependentsOf(k: KernelContext, tx: Tx, tenantId: string, plugin: string): Promise<string[]> {
  const out: string[] = []
  for (const inst of (await k.plugins.installed(tenantId, tx)).byId.values()) {
    if (inst.plugin === plugin) continue
    const v = await k.plugins.versions.byId(tx, inst.versionId)
    if (v?.manifest.dependencies && Object.hasOwn(v.manifest.dependencies, plugin)) out.push(inst.plugin)
  }
  return out
}

export async function loadInstallation(
  tx: Tx,
  id: string,
): Promise<Installation & { history: HistoryEntry[]; pendingVersionId: string | null }> {
  const [row] = await tx.sql<InstallationRow & { history: HistoryEntry[]; pending_version_id: string | null }>(
    `select ${INSTALLATION_COLS}, history, pending_version_id from plugin_installations where id = ?::uuid`,
    [id],
  )
  if (!row) throw KRN.NOT_FOUND({ what: 'installation' })
  return { ...toInstallation(row), history: row.history, pendingVersionId: row.pending_version_id }
}

/** One earlier version of an installation. */
export interface HistoryEntry {
  versionId: string
  version: string
  at: string
}

/**
 * Moves an installation to another version: capabilities become the target's (the caller has
 * established consent), the version left is appended to the history (what rollback returns
 * to), settings must satisfy the target's schema, its indexes are created. Audited, and an
 * event tells the tenant.
 */
export async function switchVersion(
  k: KernelContext,
  tx: Tx,
  inst: Installation & { history: HistoryEntry[] },
  from: PluginVersion,
  to: PluginVersion,
  how: { action: 'upgraded' | 'rolled_back'; meta: Pick<AuditRecord, 'actor' | 'ip' | 'requestId'> },
): Promise<Installation> {
  await checkDependencies(k, tx, inst.tenantId, to)
  // The settings stored must still be valid under the new version's schema.
  splitSettings(to, { ...inst.settings, ...openSecrets(k.secrets, inst) })
  const history =
    how.action === 'upgraded'
      ? [...inst.history, { versionId: from.id, version: from.version, at: new Date().toISOString() }]
      : inst.history.filter((h) => h.versionId !== to.id)
  const [row] = await tx.sql<InstallationRow>(
    `update plugin_installations set version_id = ?::uuid, capabilities = ?::text[], history = ?::jsonb, pending_version_id = null, updated_at = now()
      where id = ?::uuid returning ${INSTALLATION_COLS}`,
    [to.id, to.manifest.capabilities, JSON.stringify(history), inst.id],
  )
  await k.plugins.data.ensureIndexes(tx, to.name, to.manifest.collections ?? {})
  const diff = listDiff(from.manifest.capabilities, to.manifest.capabilities)
  await auditedWrite(tx, {
    auditOrg: inst.tenantId,
    audit: {
      ...how.meta,
      action: `plugin.${how.action}`,
      target: { kind: 'plugin_installation', id: inst.id },
      data: {
        plugin: to.name,
        from: from.version,
        to: to.version,
        sha256: to.sha256,
        capabilities: to.manifest.capabilities,
        added: diff.added,
        removed: diff.removed,
      },
    },
    events: [
      kernelEvent(`marketplace.installation.${how.action}`, `installation/${inst.id}`, {
        installationId: inst.id,
        plugin: to.name,
        version: to.version,
        capabilities: to.manifest.capabilities,
        from: from.version,
      }),
    ],
  })
  return toInstallation(row!)
}

/**
 * Installs an approved version for a tenant: the channel catalog allows it, the consent equals
 * what it requests, its dependencies are installed, its settings are valid (secrets sealed), its
 * indexes exist. Audited; the tenant gets `marketplace.installation.created`.
 */
export async function installVersion(
  k: KernelContext,
  tenantId: string,
  req: {
    plugin: string
    version: string
    capabilities: string[]
    settings: Record<string, unknown>
    mount?: string
    installedBy: string
  },
  meta: Pick<AuditRecord, 'actor' | 'ip' | 'requestId'>,
): Promise<Installation> {
  const inst = await orgTx(k, tenantId, async (tx) => {
    const version = await installableVersion(k, tx, req.plugin, req.version)
    await k.plugins.installPolicy?.(tx, tenantId, version)
    checkConsent(version, req.capabilities)
    await checkDependencies(k, tx, tenantId, version)
    const { settings, secrets } = splitSettings(version, req.settings)
    const created = await insertInstallation(tx, k.secrets, {
      version,
      mount: req.mount ?? defaultMount(version.name),
      capabilities: version.manifest.capabilities,
      settings,
      secrets,
      installedBy: req.installedBy,
    })
    await k.plugins.data.ensureIndexes(tx, version.name, version.manifest.collections ?? {})
    await auditedWrite(tx, {
      auditOrg: tenantId,
      audit: {
        ...meta,
        action: 'plugin.installed',
        target: { kind: 'plugin_installation', id: created.id },
        data: {
          plugin: version.name,
          version: version.version,
          sha256: version.sha256,
          capabilities: created.capabilities,
          settings: Object.keys(settings),
          secrets: Object.keys(secrets),
        },
      },
      events: [
        kernelEvent('marketplace.installation.created', `installation/${created.id}`, {
          installationId: created.id,
          plugin: version.name,
          version: version.version,
          capabilities: created.capabilities,
        }),
      ],
    })
    return created
  })
  k.plugins.forgetTenant(tenantId)
  return inst
}
