/**
 * Restores a tenant archive into a new, empty tenant, in one transaction of that tenant: all of
 * it or nothing. Roles get new ids; members are invited again with their roles (they accept, as
 * any invited person does); installations are installed again from the same approved versions
 * (a version blocked or withdrawn since refuses the restore) with their settings, and their sealed
 * secrets re-sealed for the new installation; records keep their ids, versions and times, their
 * personal fields encrypted again under the new tenant's keys. The source's audit chain stays in
 * the archive (it is the source tenant's history, hash-linked to it): the new tenant's chain
 * records the restore, the archive's checksum and the source's chain head.
 */
import { v7 as uuidv7 } from 'uuid'
import type { Tx } from '../db/database.js'
import type { SecretBox } from '../crypto/secret-box.js'
import type { AuditRecord } from '../audit/audit-log.js'
import { appendAudit } from '../audit/audit-log.js'
import { findAssignableRole } from '../identity/roles.js'
import { createInvitation } from '../identity/invitations.js'
import { isPermission } from '../identity/permissions.js'
import type { CollectionRef } from '../plugins/data/index.js'
import { RecordValidator } from '../plugins/data/record-validator.js'
import { checkConsent, insertInstallation, secretsAd, splitSettings } from '../plugins/installations.js'
import type { PluginVersion } from '../plugins/versions.js'
import { GOV } from './errors.js'
import { readArchive, type RecordEntry, verifyArchiveAudit } from './export-archive.js'
import { collectionsOf } from './export.js'
import type { ProtectedFields } from './protected-fields.js'

export interface RestoreDeps {
  fields: ProtectedFields
  secrets: SecretBox
  /** The version if a tenant may install it now (approved, not blocked, allowed by policy). */
  installable(tx: Tx, tenantId: string, plugin: string, version: string): Promise<PluginVersion>
  /** Refuses a version whose dependencies the tenant has not installed. */
  checkDependencies(tx: Tx, tenantId: string, version: PluginVersion): Promise<void>
  ensureIndexes(tx: Tx, version: PluginVersion): Promise<void>
}

/** What a restore did. */
export interface RestoreReport {
  tenantId: string
  source: { tenantId: string; slug: string; exportedAt: string; auditHead: { seq: string; hash: string } | null }
  archiveSha256: string
  restored: { roles: number; installations: number; records: number }
  /** The source's members, invited into the new tenant with their roles (the token is for mailing them; never stored). */
  invited: Array<{ email: string; role: string; acceptToken: string }>
  /** The source's audit entries in the archive, recomputed as a chain (kept in the archive, not copied). */
  sourceAudit: { entries: number; verified: true }
}

const CHUNK = 200
const records = new RecordValidator()

/** Restores `text` (an archive) into the transaction's tenant `tenantId`. */
export async function restoreTenant(
  tx: Tx,
  tenantId: string,
  text: string,
  archiveSha256: string,
  deps: RestoreDeps,
  meta: Pick<AuditRecord, 'actor' | 'ip' | 'requestId'>,
  invitedBy: string,
): Promise<RestoreReport> {
  const archive = readArchive(text)
  const chain = verifyArchiveAudit(archive)
  if (!chain.ok) throw GOV.ARCHIVE_INVALID({ reason: `the audit section's hash chain is broken (${chain.reason})` })
  const { sections, manifest } = archive

  const [busy] = await tx.sql<{ what: string }>(
    `select 'it has installations' as what from plugin_installations
     union all select 'it has plugin records' from plugin_records
     union all select 'it has roles of its own' from roles where tenant_id = ?::uuid and not builtin
     limit 1`,
    [tenantId],
  )
  if (busy) throw GOV.RESTORE_TARGET_NOT_EMPTY({ reason: busy.what })

  for (const role of sections.roles) {
    const bad = role.permissions.find((p) => !isPermission(p))
    if (bad) throw GOV.ARCHIVE_INVALID({ reason: `role ${role.name}: "${bad}" is not a permission` })
  }
  if (sections.roles.length)
    await tx.sql(
      `insert into roles (id, tenant_id, name, description, permissions)
       select r.id, ?::uuid, r.name, r.description, array(select jsonb_array_elements_text(r.permissions))
         from jsonb_to_recordset(?::jsonb) as r(id uuid, name text, description text, permissions jsonb)`,
      [tenantId, JSON.stringify(sections.roles.map((r) => ({ ...r, id: uuidv7() })))],
    )

  // Members join through invitations they accept (ADR 0014): an archive names people, it does not
  // put accounts into an organisation. Whoever is a member of the new tenant already stays as is.
  const invited: RestoreReport['invited'] = []
  for (const m of sections.members) {
    const role = await findAssignableRole(tx, tenantId, 'tenant', m.role)
    const [member] = await tx.sql(
      'select 1 from memberships m join users u on u.id = m.user_id where lower(u.email) = lower(?)',
      [m.email],
    )
    if (member) continue
    const inv = await createInvitation(tx, tenantId, 'tenant', m.email, role, invitedBy, meta)
    invited.push({ email: m.email, role: role.name, acceptToken: inv.token })
  }

  const refs = new Map<string, CollectionRef>()
  const versions: PluginVersion[] = []
  for (const inst of sections.installations) {
    const version = await deps.installable(tx, tenantId, inst.plugin, inst.version)
    checkConsent(version, inst.capabilities)
    let secrets: Record<string, unknown> = {}
    if (inst.secretsSealed) {
      try {
        secrets = JSON.parse(deps.secrets.open(inst.secretsSealed, secretsAd(inst.sourceId)))
      } catch {
        throw GOV.ARCHIVE_SECRETS_UNREADABLE({ plugin: inst.plugin })
      }
    }
    const split = splitSettings(version, { ...inst.settings, ...secrets })
    const created = await insertInstallation(tx, deps.secrets, {
      version,
      mount: inst.mount,
      capabilities: inst.capabilities,
      settings: split.settings,
      secrets: split.secrets,
      installedBy: `restore:${manifest.tenant.id}`,
    })
    if (inst.status !== 'active')
      await tx.sql('update plugin_installations set status = ? where id = ?::uuid', [inst.status, created.id])
    await deps.ensureIndexes(tx, version)
    for (const ref of collectionsOf(version.name, version.manifest)) refs.set(`${ref.plugin}\u0000${ref.name}`, ref)
    versions.push(version)
  }
  for (const version of versions) await deps.checkDependencies(tx, tenantId, version)

  for (let i = 0; i < sections.records.length; i += CHUNK) {
    const chunk = sections.records.slice(i, i + CHUNK)
    const rows = []
    for (const r of chunk) rows.push(await sealedRecord(tx, refs, r, deps.fields))
    await tx.sql(
      `insert into plugin_records (plugin, collection, id, version, data, created_at, updated_at)
       select r.plugin, r.collection, r.id, r.version, r.data, r.created_at, r.updated_at
         from jsonb_to_recordset(?::jsonb)
           as r(plugin text, collection text, id uuid, version int, data jsonb, created_at timestamptz, updated_at timestamptz)`,
      [JSON.stringify(rows)],
    )
  }

  const report: RestoreReport = {
    tenantId,
    source: {
      tenantId: manifest.tenant.id,
      slug: manifest.tenant.slug,
      exportedAt: manifest.exportedAt,
      auditHead: manifest.auditHead,
    },
    archiveSha256,
    restored: {
      roles: sections.roles.length,
      installations: sections.installations.length,
      records: sections.records.length,
    },
    invited,
    sourceAudit: { entries: chain.entries, verified: true },
  }
  await appendAudit(tx, tenantId, {
    ...meta,
    action: 'governance.tenant.restored',
    target: { kind: 'tenant', id: tenantId },
    data: {
      source: report.source,
      archiveSha256,
      restored: report.restored,
      invited: invited.map((i) => ({ email: i.email, role: i.role })),
    },
  })
  return report
}

async function sealedRecord(tx: Tx, refs: Map<string, CollectionRef>, r: RecordEntry, fields: ProtectedFields) {
  const ref = refs.get(`${r.plugin}\u0000${r.collection}`)
  if (!ref)
    throw GOV.ARCHIVE_INVALID({
      reason: `record ${r.id}: ${r.plugin} declares no collection ${r.collection} in the archive's installations`,
    })
  if (!UUID.test(r.id)) throw GOV.ARCHIVE_INVALID({ reason: `record id ${r.id} is not a UUID` })
  // A record the collection's schema refuses never reaches the plugin (KRN_ERR_VALIDATION_FAILED).
  records.check(ref, r.data)
  return {
    plugin: r.plugin,
    collection: r.collection,
    id: r.id,
    version: r.version,
    data: await fields.seal(tx, ref, r.id, r.data),
    created_at: r.createdAt,
    updated_at: r.updatedAt,
  }
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/
