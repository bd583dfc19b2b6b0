import { createHash } from 'node:crypto'
import { lintPlugin, validateManifest, type ManifestIssue, type PluginManifest } from '@trellis/plugin-sdk'
import { PLATFORM_ORG, type Database, type TransactionSource, type Tx } from '../db/database.js'
import { PLG } from '../errors.js'
import { appendAudit } from '../audit/audit-log.js'
import { attestedDigest } from './version-attestation.js'
import { insertVersion } from '../extension-api/version-registry.js'
import { scheduleIssues } from '../workflows/schedule-spec.js'

/** A plugin version the kernel can run: its manifest and its bundle. */
export interface PluginVersion {
  id: string
  name: string
  version: string
  sha256: string
  manifest: PluginManifest
  code: string
  sourceMap: string | null
  publisherId: string | null
  status: VersionStatus
  createdAt: string
}

/**
 * Where a version is on its way to tenants: marketplace checks, then review, then approved (the
 * only installable status); a platform admin can block an approved version everywhere.
 */
export type VersionStatus = 'checking' | 'failed_checks' | 'in_review' | 'approved' | 'rejected' | 'blocked'

interface VersionRow {
  id: string
  name: string
  version: string
  sha256: string
  manifest: PluginManifest
  code: string
  source_map: string | null
  publisher_id: string | null
  status: VersionStatus
  created_at: Date
}

/** What a platform admin uploads: the manifest and the bundle `trellis-plugin build` wrote. */
export interface VersionUpload {
  manifest: unknown
  code: string
  sourceMap?: string
  /** Expected sha256 of `code`, when the uploader states it. */
  sha256?: string
  publisherId?: string | null
  /** Status it starts in (default `checking`; the dev kernel and tests register `approved`). */
  status?: VersionStatus
  /** The marketplace artifact it was unpacked from. */
  artifact?: { sha256: string; signature: string; keyId: string; changelog?: string }
}

/** Loads a bundle in the sandbox and returns the entries it declares (the plugin host supplies it). */
export type EntriesProbe = (bundle: {
  id: string
  version: string
  code: string
  sha256: string
  sourceMap?: string
}) => Promise<Record<string, string[]>>

const fromRow = (r: VersionRow): PluginVersion => ({
  id: r.id,
  name: r.name,
  version: r.version,
  sha256: r.sha256,
  manifest: r.manifest,
  code: r.code,
  sourceMap: r.source_map,
  publisherId: r.publisher_id,
  status: r.status,
  createdAt: new Date(r.created_at).toISOString(),
})

const problems = (issues: ManifestIssue[]) =>
  issues.map((i) => ({ pointer: i.pointer, message: i.message, rule: i.rule }))

/**
 * The catalogue of plugin versions. Versions are immutable once registered (only `status`
 * changes), so they are cached by id for the life of the process.
 */
export class PluginVersions {
  private readonly cache = new Map<string, Promise<PluginVersion>>()
  private readonly statusCheckedAt = new Map<string, number>()
  /** Loaded versions, for lookups that need no transaction while their status is fresh. */
  private readonly settled = new Map<string, PluginVersion>()

  /** `statusTtlMs`: how soon a block made by another process is seen here. */
  constructor(
    private readonly db: Database,
    private readonly statusTtlMs = 1000,
  ) {}

  /**
   * Checks an upload the way `trellis-plugin validate` and the marketplace do — manifest schema,
   * the bundle loads in the sandbox and declares exactly what the manifest does, the lint — and
   * stores it. Runs in a platform transaction.
   */
  async register(tx: Tx, upload: VersionUpload, probe: EntriesProbe, createdBy: string): Promise<PluginVersion> {
    const v = validateManifest(upload.manifest)
    const errors = v.ok ? scheduleIssues(v.manifest) : v.errors
    if (!v.ok || errors.length)
      throw PLG.BUNDLE_INVALID({
        reason: `the manifest is invalid: ${errors.map((e) => `${e.pointer || '/'} ${e.message}`).join('; ')}`,
        problems: problems(errors),
      })
    const manifest = v.manifest
    const sha256 = createHash('sha256').update(upload.code).digest('hex')
    if (upload.sha256 && upload.sha256.toLowerCase() !== sha256)
      throw PLG.BUNDLE_INVALID({ reason: 'the bundle does not hash to the stated sha256' })
    const [taken] = await tx.sql<{ id: string }>('select id from plugin_versions where name = ? and version = ?', [
      manifest.name,
      manifest.version,
    ])
    if (taken) throw PLG.VERSION_EXISTS({ name: manifest.name, version: manifest.version })
    let entries: Record<string, string[]>
    try {
      entries = await probe({
        id: manifest.name,
        version: manifest.version,
        code: upload.code,
        sha256,
        ...(upload.sourceMap ? { sourceMap: upload.sourceMap } : {}),
      })
    } catch (err) {
      throw PLG.BUNDLE_INVALID({ reason: `the bundle does not load in the sandbox: ${(err as Error).message}` })
    }
    const lint = lintPlugin({
      manifest,
      entries,
      sizes: { bundleBytes: Buffer.byteLength(upload.code), sourceMapBytes: Buffer.byteLength(upload.sourceMap ?? '') },
    })
    if (lint.errors.length)
      throw PLG.BUNDLE_INVALID({
        reason: lint.errors.map((e) => `${e.pointer || '/'} ${e.message}`).join('; '),
        problems: problems(lint.errors),
      })
    const row = await insertVersion(
      tx,
      {
        manifest,
        code: upload.code,
        sourceMap: upload.sourceMap ?? null,
        publisherId: upload.publisherId ?? null,
        createdBy,
        status: upload.status ?? 'checking',
        ...(upload.artifact ? { artifact: upload.artifact } : {}),
      },
      { attest: true },
    )
    return fromRow(row as unknown as VersionRow)
  }

  /** A version by id (cached; its status re-read at most every `statusTtlMs`), or undefined. */
  async byId(tx: Tx, id: string): Promise<PluginVersion | undefined> {
    let found = this.cache.get(id)
    if (found && Date.now() - (this.statusCheckedAt.get(id) ?? 0) > this.statusTtlMs) {
      const v = await found.catch(() => undefined)
      if (v) {
        this.statusCheckedAt.set(id, Date.now())
        const [row] = await tx.sql<{ status: PluginVersion['status'] }>(
          'select status from plugin_versions where id = ?::uuid',
          [id],
        )
        if (row) v.status = row.status
      }
    }
    if (!found) {
      this.statusCheckedAt.set(id, Date.now())
      found = tx.sql<VersionRow>('select * from plugin_versions where id = ?::uuid', [id]).then(async (rows) => {
        if (!rows[0]) throw PLG.VERSION_NOT_FOUND({ name: id })
        const v = fromRow(rows[0])
        await this.verify(tx, v)
        this.settled.set(id, v)
        return v
      })
      this.cache.set(id, found)
      found.catch(() => this.cache.delete(id))
    }
    return found.catch((err: unknown) => {
      if (PLG.VERSION_UNVERIFIED.is(err)) throw err
      return undefined
    })
  }

  /**
   * A version that can run (approved, or blocked and still installed) must carry the code whose
   * digest the platform's audit chain recorded when it was registered or approved: the row's
   * own `sha256` proves nothing once someone with write access to the table rewrote both.
   * Refused with PLG_ERR_VERSION_UNVERIFIED (a 503, so it is logged), audited.
   */
  private async verify(tx: Tx, v: PluginVersion): Promise<void> {
    if (v.status !== 'approved' && v.status !== 'blocked') return
    const digest = createHash('sha256').update(v.code).digest('hex')
    const attested = await attestedDigest(tx, v.id)
    let reason: string | undefined
    if (attested === undefined) reason = 'no approval of its code is recorded in the audit chain'
    else if (attested !== digest) reason = 'its code does not match the digest recorded when it was approved'
    else if (v.sha256 !== digest) reason = 'its code does not match its stored digest'
    if (!reason) return
    this.reportUnverified(v, digest, attested, reason)
    throw PLG.VERSION_UNVERIFIED({ name: v.name, version: v.version, reason })
  }

  private readonly reported = new Map<string, number>()

  /** Audits (in the platform chain, at most once a minute per version) a version refused at load. */
  private reportUnverified(v: PluginVersion, digest: string, attested: string | undefined, reason: string): void {
    const last = this.reported.get(v.id) ?? 0
    if (Date.now() - last < 60_000) return
    this.reported.set(v.id, Date.now())
    // Its own transaction, not awaited: the caller's rolls back with the refusal.
    void this.db
      .inOrg(PLATFORM_ORG, (tx) =>
        appendAudit(tx, PLATFORM_ORG, {
          actor: { kind: 'system', id: 'plugin-versions' },
          action: 'plugin.version.unverified',
          target: { kind: 'plugin_version', id: v.id },
          data: {
            plugin: v.name,
            version: v.version,
            sha256: digest,
            stored: v.sha256,
            attested: attested ?? null,
            reason,
          },
        }),
      )
      .catch(() => this.reported.delete(v.id))
  }

  /**
   * A version by id outside any transaction: from memory while its status is fresh (no round
   * trip — this is on the path of every plugin request and event), else read in one of
   * `orgId`'s transactions of `via` (the request pool by default; background work passes its own).
   */
  async get(
    orgId: string,
    id: string,
    via: Pick<TransactionSource, 'inOrg'> = this.db,
  ): Promise<PluginVersion | undefined> {
    const v = this.settled.get(id)
    if (v && Date.now() - (this.statusCheckedAt.get(id) ?? 0) <= this.statusTtlMs) return v
    return via.inOrg(orgId, (tx) => this.byId(tx, id))
  }

  /** A version by name and exact version, or undefined. */
  async find(tx: Tx, name: string, version: string): Promise<PluginVersion | undefined> {
    const [row] = await tx.sql<{ id: string }>('select id from plugin_versions where name = ? and version = ?', [
      name,
      version,
    ])
    return row ? this.byId(tx, row.id) : undefined
  }

  /** Versions, newest first per name, without their code. */
  async list(
    tx: Tx,
    name: string | undefined,
    after: string | null,
    limit: number,
  ): Promise<Array<Omit<PluginVersion, 'code' | 'sourceMap'>>> {
    const rows = await tx.sql<VersionRow>(
      `select id, name, version, sha256, manifest, '' as code, null as source_map, publisher_id, status, created_at from plugin_versions
        where (?::text is null or name = ?) and (?::uuid is null or id > ?::uuid) order by id limit ?`,
      [name ?? null, name ?? null, after, after, limit],
    )
    return rows.map((r) => {
      const { code: _c, sourceMap: _s, ...rest } = fromRow(r)
      return rest
    })
  }

  /** Drops what is cached about a version (after a change made with other SQL). */
  forget(id: string): void {
    this.cache.delete(id)
    this.settled.delete(id)
    this.statusCheckedAt.delete(id)
  }

  /**
   * Moves a version to any status (platform transaction); cached copies learn it at once. For
   * core's own tests only: nothing outside core can reach it (core's public `Kernel` leaves out
   * its context), and everything else moves a version through the registry's transitions.
   */
  async setStatus(tx: Tx, id: string, status: VersionStatus): Promise<PluginVersion> {
    const [row] = await tx.sql<VersionRow>('update plugin_versions set status = ? where id = ?::uuid returning *', [
      status,
      id,
    ])
    if (!row) throw PLG.VERSION_NOT_FOUND({ name: id })
    const v = fromRow(row)
    // Cached copies learn the status at once; the code is verified as on any load.
    await this.verify(tx, v).catch((err: unknown) => {
      if (!PLG.VERSION_UNVERIFIED.is(err) || status !== 'blocked') throw err
    })
    this.cache.set(id, Promise.resolve(v))
    this.settled.set(id, v)
    this.statusCheckedAt.set(id, Date.now())
    return v
  }
}
