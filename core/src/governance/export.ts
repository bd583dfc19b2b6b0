/**
 * Exports one tenant's data as a tenant archive (export-archive.ts), read in one transaction of
 * that tenant so the sections agree with each other: its own roles, its members and their roles,
 * its installations with their settings (secret settings stay sealed by the kernel), every record
 * of every installed plugin's collections (personal fields decrypted — they are re-encrypted with
 * the new tenant's keys on restore) and its sealed audit chain.
 */
import { fieldClassifications, isEncryptedClassification } from '@trellis/plugin-sdk'
import type { Tx } from '../db/database.js'
import { KRN } from '../errors.js'
import type { AuditRow } from '../audit/chain.js'
import type { CollectionRef } from '../plugins/data/index.js'
import {
  ARCHIVE_FORMAT,
  ARCHIVE_VERSION,
  type ArchiveManifest,
  type ArchiveSections,
  type AuditEntry,
  writeArchive,
} from './export-archive.js'
import type { ProtectedFields } from './protected-fields.js'

/** A collection of an installed version, as its manifest declares it. */
export interface InstalledCollection extends CollectionRef {
  personal: Array<{ field: string; classification: string }>
}

interface ManifestCollections {
  collections?: Record<string, { schema?: unknown; indexes?: CollectionRef['indexes'] }>
}

/** The collections a plugin's manifest declares, with their personal fields. */
export function collectionsOf(plugin: string, manifest: ManifestCollections): InstalledCollection[] {
  return Object.entries(manifest.collections ?? {}).map(([name, c]) => ({
    plugin,
    name,
    schema: c.schema,
    indexes: c.indexes,
    personal: Object.entries(fieldClassifications(c.schema))
      .filter(([, level]) => isEncryptedClassification(level))
      .map(([field, classification]) => ({ field, classification })),
  }))
}

const iso = (t: Date | string) => new Date(t).toISOString()
/** A timestamp column as ISO 8601 text to the microsecond (a JavaScript Date keeps milliseconds). */
const EXACT_TIME = (column: string) => `to_json(${column}) #>> '{}' as ${column}`
const PAGE = 500

/** Writes the archive of the transaction's tenant. */
export async function exportTenant(
  tx: Tx,
  tenantId: string,
  deps: { fields: ProtectedFields; secretsSealedBy: string; now?: () => Date },
): Promise<{ text: string; sha256: string; manifest: ArchiveManifest }> {
  const [tenant] = await tx.sql<{ id: string; name: string; slug: string }>(
    'select id, name, slug from tenants where id = ?::uuid',
    [tenantId],
  )
  if (!tenant) throw KRN.NOT_FOUND({ what: `tenant ${tenantId}` })
  const sections: ArchiveSections = { roles: [], members: [], installations: [], records: [], audit: [] }

  sections.roles = await tx.sql<{ name: string; description: string; permissions: string[] }>(
    'select name, description, permissions from roles where tenant_id = ?::uuid and not builtin order by name',
    [tenantId],
  )
  sections.members = await tx.sql<{ userId: string; email: string; name: string; role: string }>(
    `select m.user_id::text as "userId", u.email, u.name, r.name as role
       from memberships m join users u on u.id = m.user_id join roles r on r.id = m.role_id
      where m.tenant_id = ?::uuid order by m.created_at, m.id`,
    [tenantId],
  )
  const installations = await tx.sql<{
    id: string
    plugin: string
    version: string
    mount: string
    capabilities: string[]
    status: 'active' | 'disabled'
    settings: Record<string, unknown>
    secret_names: string[]
    secrets_enc: string | null
    created_at: Date | string
    manifest: ManifestCollections
  }>(
    `select i.id, i.plugin, v.version, i.mount, i.capabilities, i.status, i.settings, i.secret_names, i.secrets_enc,
            i.created_at, v.manifest
       from plugin_installations i join plugin_versions v on v.id = i.version_id order by i.created_at, i.id`,
  )
  const personalFields: ArchiveManifest['personalFields'] = []
  for (const inst of installations) {
    sections.installations.push({
      sourceId: inst.id,
      plugin: inst.plugin,
      version: inst.version,
      mount: inst.mount,
      capabilities: inst.capabilities,
      status: inst.status,
      settings: inst.settings,
      secretNames: inst.secret_names,
      secretsSealed: inst.secrets_enc,
      createdAt: iso(inst.created_at),
    })
    for (const ref of collectionsOf(inst.plugin, inst.manifest)) {
      for (const p of ref.personal) personalFields.push({ plugin: inst.plugin, collection: ref.name, ...p })
      await exportCollection(tx, ref, deps.fields, sections)
    }
  }

  // Every column, whichever the chain commits to (the payload, or its digest once payloads may be erased).
  const audit = await tx.sql<{ seq_text: string; entry: AuditRow }>(
    `select a.seq::text as seq_text, to_jsonb(a) as entry from audit_log a
      where a.tenant_id = ?::uuid and a.seq is not null order by a.seq`,
    [tenantId],
  )
  sections.audit = audit.map(
    ({ seq_text, entry: a }): AuditEntry => ({
      id: a.id,
      seq: seq_text,
      at: iso(a.at),
      actor: { kind: a.actor_kind, id: a.actor_id },
      action: a.action,
      target: a.target_kind === null ? null : { kind: a.target_kind, id: a.target_id },
      data: a.data,
      ip: a.ip,
      requestId: a.request_id,
      // Sealed entries only (seq is not null): both are set.
      prevHash: String(a.prev_hash),
      hash: String(a.hash),
      ...(a.data_digest ? { dataDigest: a.data_digest } : {}),
      ...(a.erased_at ? { erasedAt: iso(a.erased_at) } : {}),
    }),
  )
  const last = sections.audit.at(-1)
  return writeArchive(
    {
      format: ARCHIVE_FORMAT,
      version: ARCHIVE_VERSION,
      exportedAt: (deps.now?.() ?? new Date()).toISOString(),
      tenant,
      secretsSealedBy: deps.secretsSealedBy,
      personalFields,
      auditHead: last ? { seq: last.seq, hash: last.hash } : null,
    },
    sections,
  )
}

/** Every record of one collection, page by page, personal fields decrypted. */
async function exportCollection(
  tx: Tx,
  ref: CollectionRef,
  fields: ProtectedFields,
  sections: ArchiveSections,
): Promise<void> {
  let after = '00000000-0000-0000-0000-000000000000'
  for (;;) {
    const rows = await tx.sql<{
      id: string
      version: number
      data: Record<string, unknown>
      created_at: string
      updated_at: string
    }>(
      `select id::text as id, version, data, ${EXACT_TIME('created_at')}, ${EXACT_TIME('updated_at')} from plugin_records
        where plugin = ? and collection = ? and id > ?::uuid order by id limit ${PAGE}`,
      [ref.plugin, ref.name, after],
    )
    await fields.open(tx, ref, rows)
    for (const r of rows)
      sections.records.push({
        plugin: ref.plugin,
        collection: ref.name,
        id: r.id,
        version: r.version,
        data: r.data,
        createdAt: r.created_at,
        updatedAt: r.updated_at,
      })
    if (rows.length < PAGE) return
    after = rows.at(-1)!.id
  }
}

/** What the audit entry of an export records: the archive's checksum, its counts and chain head. */
export function exportedAuditData(a: { sha256: string; manifest: ArchiveManifest }): Record<string, unknown> {
  const counts = Object.fromEntries(Object.entries(a.manifest.sections).map(([k, v]) => [k, v.count]))
  return { sha256: a.sha256, counts, auditHead: a.manifest.auditHead }
}
