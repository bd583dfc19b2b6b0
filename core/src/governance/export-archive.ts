/**
 * The tenant archive (docs/governance.md, "Export and restore"): JSON Lines, UTF-8. Line 1 is the
 * manifest; every further line is one item `{"section": <name>, "item": {...}}`, sections in the
 * order of {@link SECTIONS}. The manifest gives each section's item count and the SHA-256 of its
 * lines (each line's text and its "\n"), so a reader finds an altered, reordered or truncated
 * section before it trusts a byte of it.
 */
import { createHash } from 'node:crypto'
import { type Static, type TSchema, Type } from '@sinclair/typebox'
import { Value } from '@sinclair/typebox/value'
import { type AuditRow, chainHash, GENESIS_HASH, payloadDigest } from '../audit/chain.js'
import { GOV } from './errors.js'

export const ARCHIVE_FORMAT = 'trellis-tenant-archive'
export const ARCHIVE_VERSION = 1

const Json = Type.Unknown()
const Iso = Type.String({ minLength: 1 })

const RoleItem = Type.Object({
  name: Type.String(),
  description: Type.String(),
  permissions: Type.Array(Type.String()),
})
const MemberItem = Type.Object({
  userId: Type.String(),
  email: Type.String(),
  name: Type.String(),
  role: Type.String(),
})
const InstallationItem = Type.Object({
  sourceId: Type.String(),
  plugin: Type.String(),
  version: Type.String(),
  mount: Type.String(),
  capabilities: Type.Array(Type.String()),
  status: Type.Union([Type.Literal('active'), Type.Literal('disabled')]),
  settings: Type.Record(Type.String(), Json),
  secretNames: Type.Array(Type.String()),
  /** The secret settings as the kernel sealed them (never in clear), bound to `sourceId`. */
  secretsSealed: Type.Union([Type.String(), Type.Null()]),
  createdAt: Iso,
})
const RecordItem = Type.Object({
  plugin: Type.String(),
  collection: Type.String(),
  id: Type.String(),
  version: Type.Integer({ minimum: 1 }),
  data: Type.Record(Type.String(), Json),
  createdAt: Iso,
  updatedAt: Iso,
})
const AuditItem = Type.Object({
  id: Type.String(),
  seq: Type.String({ pattern: '^[0-9]+$' }),
  at: Iso,
  actor: Type.Object({ kind: Type.String(), id: Type.String() }),
  action: Type.String(),
  target: Type.Union([Type.Object({ kind: Type.String(), id: Type.Union([Type.String(), Type.Null()]) }), Type.Null()]),
  data: Json,
  ip: Type.Union([Type.String(), Type.Null()]),
  requestId: Type.Union([Type.String(), Type.Null()]),
  prevHash: Type.String(),
  hash: Type.String(),
  /** Set on entries whose chain link commits to the payload's digest (their payload may be erased). */
  dataDigest: Type.Optional(Type.Union([Type.String(), Type.Null()])),
  /** When the payload was erased (it is then `{}`; the digest keeps the link verifiable). */
  erasedAt: Type.Optional(Type.Union([Type.String(), Type.Null()])),
})

const ITEM = {
  roles: RoleItem,
  members: MemberItem,
  installations: InstallationItem,
  records: RecordItem,
  audit: AuditItem,
} satisfies Record<string, TSchema>

/** The sections, in the order they appear. */
export const SECTIONS = ['roles', 'members', 'installations', 'records', 'audit'] as const
export type SectionName = (typeof SECTIONS)[number]

export type RoleEntry = Static<typeof RoleItem>
export type MemberEntry = Static<typeof MemberItem>
export type InstallationEntry = Static<typeof InstallationItem>
export type RecordEntry = Static<typeof RecordItem>
export type AuditEntry = Static<typeof AuditItem>

export interface ArchiveSections {
  roles: RoleEntry[]
  members: MemberEntry[]
  installations: InstallationEntry[]
  records: RecordEntry[]
  audit: AuditEntry[]
}

const SectionSummary = Type.Object({ count: Type.Integer({ minimum: 0 }), sha256: Type.String() })

const Manifest = Type.Object({
  format: Type.Literal(ARCHIVE_FORMAT),
  version: Type.Literal(ARCHIVE_VERSION),
  exportedAt: Iso,
  tenant: Type.Object({ id: Type.String(), name: Type.String(), slug: Type.String() }),
  /** Fingerprint of the platform key that sealed the installations' secrets. */
  secretsSealedBy: Type.String(),
  /** Fields whose values are personal data (in clear in this archive; encrypted again on restore). */
  personalFields: Type.Array(
    Type.Object({
      plugin: Type.String(),
      collection: Type.String(),
      field: Type.String(),
      classification: Type.String(),
    }),
  ),
  /** The audit chain's head when exported (the last entry of the `audit` section). */
  auditHead: Type.Union([Type.Object({ seq: Type.String(), hash: Type.String() }), Type.Null()]),
  sections: Type.Object({
    roles: SectionSummary,
    members: SectionSummary,
    installations: SectionSummary,
    records: SectionSummary,
    audit: SectionSummary,
  }),
})
export type ArchiveManifest = Static<typeof Manifest>

export interface TenantArchive {
  manifest: ArchiveManifest
  sections: ArchiveSections
}

const sha256 = (text: string) => createHash('sha256').update(text).digest('hex')

/** Writes an archive: the manifest (with each section's count and checksum) then the items. */
export function writeArchive(
  manifest: Omit<ArchiveManifest, 'sections'>,
  sections: ArchiveSections,
): { text: string; sha256: string; manifest: ArchiveManifest } {
  const bodies: string[] = []
  const summary = {} as ArchiveManifest['sections']
  for (const name of SECTIONS) {
    const lines = sections[name].map((item) => `${JSON.stringify({ section: name, item })}\n`).join('')
    summary[name] = { count: sections[name].length, sha256: sha256(lines) }
    bodies.push(lines)
  }
  const full: ArchiveManifest = { ...manifest, sections: summary }
  const text = `${JSON.stringify(full)}\n${bodies.join('')}`
  return { text, sha256: sha256(text), manifest: full }
}

/**
 * Reads an archive, checking its manifest, every section's count and checksum, and every item's
 * shape; throws `GOV_ERR_ARCHIVE_INVALID` or `GOV_ERR_ARCHIVE_CHECKSUM` naming what is wrong.
 */
export function readArchive(text: string): TenantArchive {
  const lines = text.split('\n')
  if (lines.at(-1) === '') lines.pop()
  const parse = (line: string, n: number): unknown => {
    try {
      return JSON.parse(line)
    } catch {
      throw GOV.ARCHIVE_INVALID({ reason: 'not JSON', line: n })
    }
  }
  const manifest = parse(lines[0] ?? '', 1)
  if (!Value.Check(Manifest, manifest))
    throw GOV.ARCHIVE_INVALID({
      reason: `the manifest is not a ${ARCHIVE_FORMAT} version ${ARCHIVE_VERSION} manifest`,
      line: 1,
    })
  const sections: ArchiveSections = { roles: [], members: [], installations: [], records: [], audit: [] }
  const raw: Record<SectionName, string[]> = { roles: [], members: [], installations: [], records: [], audit: [] }
  let order = 0
  for (let i = 1; i < lines.length; i++) {
    const entry = parse(lines[i]!, i + 1) as { section?: unknown; item?: unknown }
    const name = entry?.section as SectionName
    const at = SECTIONS.indexOf(name)
    if (at < 0) throw GOV.ARCHIVE_INVALID({ reason: `unknown section ${JSON.stringify(entry?.section)}`, line: i + 1 })
    if (at < order) throw GOV.ARCHIVE_CHECKSUM({ section: name })
    order = at
    if (!Value.Check(ITEM[name], entry.item))
      throw GOV.ARCHIVE_INVALID({ reason: `not a valid ${name} item`, line: i + 1 })
    raw[name].push(`${lines[i]}\n`)
    ;(sections[name] as unknown[]).push(entry.item)
  }
  for (const name of SECTIONS) {
    const want = manifest.sections[name]
    if (want.count !== raw[name].length || want.sha256 !== sha256(raw[name].join('')))
      throw GOV.ARCHIVE_CHECKSUM({ section: name })
  }
  return { manifest, sections }
}

/**
 * Recomputes the hash chain of the archive's audit entries (they are the exported tenant's, from
 * its first entry): whether they are complete and unaltered, and the head they end at.
 */
export function verifyArchiveAudit(archive: TenantArchive): { ok: boolean; entries: number; reason?: string } {
  let prev = GENESIS_HASH
  let seq = 1n
  for (const e of archive.sections.audit) {
    const fail = (reason: string) => ({
      ok: false,
      entries: archive.sections.audit.length,
      reason: `entry ${e.seq}: ${reason}`,
    })
    if (BigInt(e.seq) !== seq) return fail(`expected entry ${seq}`)
    if (e.prevHash !== prev) return fail('prev_hash does not match the previous entry')
    const row = {
      id: e.id,
      tenant_id: archive.manifest.tenant.id,
      seq: e.seq,
      at: e.at,
      actor_kind: e.actor.kind,
      actor_id: e.actor.id,
      action: e.action,
      target_kind: e.target?.kind ?? null,
      target_id: e.target?.id ?? null,
      data: e.data,
      ip: e.ip,
      request_id: e.requestId,
      prev_hash: e.prevHash,
      hash: e.hash,
      data_digest: e.dataDigest ?? null,
      erased_at: e.erasedAt ?? null,
    } as AuditRow
    if (e.dataDigest && !e.erasedAt && payloadDigest(e.data) !== e.dataDigest)
      return fail('the payload does not match its sealed digest')
    if (chainHash(prev, row, e.seq) !== e.hash) return fail('hash does not match the entry')
    prev = e.hash
    seq++
  }
  const head = archive.manifest.auditHead
  const last = archive.sections.audit.at(-1)
  if ((head?.hash ?? null) !== (last?.hash ?? null))
    return { ok: false, entries: archive.sections.audit.length, reason: 'the manifest names another chain head' }
  return { ok: true, entries: archive.sections.audit.length }
}
