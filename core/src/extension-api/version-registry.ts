/**
 * The plugin-version registry: the one writer of `plugin_versions`. A version is registered
 * (in `checking`, or `approved` when the kernel registers it directly: the dev kernel, tests,
 * benchmarks), checked (→ `in_review` or `failed_checks`), approved or rejected, blocked and
 * unblocked — each a transition from exactly one status, in the caller's transaction. A
 * transition that does not apply (the version moved on meanwhile) changes nothing and returns
 * undefined: the caller says why with its own error. Cached copies in the plugin host learn the
 * new status as soon as the transaction commits.
 */
import { createHash } from 'node:crypto'
import { v7 as uuidv7 } from 'uuid'
import type { PluginManifest } from '@trellis/plugin-sdk'
import { PLATFORM_ORG, type Tx } from '../db/database.js'
import { appendAudit, type AuditRecord } from '../audit/audit-log.js'
import { ATTESTING_ACTIONS } from '../plugins/version-attestation.js'
import type { ExtensionTx } from './services.js'

export type VersionStatus = 'checking' | 'failed_checks' | 'in_review' | 'approved' | 'rejected' | 'blocked'

/** A stored version, as the registry reads it (`code` only where asked for). */
export interface VersionState {
  id: string
  name: string
  version: string
  sha256: string
  manifest: PluginManifest & Record<string, unknown>
  publisher_id: string | null
  status: VersionStatus
  created_at: Date
  created_by: string
  artifact_sha256: string | null
  signature: string | null
  key_id: string | null
  changelog: string
  checks: Array<{ name: string; status: string; blocking?: boolean; details?: Record<string, unknown> }>
  review: Record<string, unknown> | null
  blocked_reason: string | null
  checks_attempts: number
}

/** A version claimed for its automated checks, with its bundle. */
export interface ClaimedVersion extends VersionState {
  code: string
  source_map: string | null
}

/** What registering stores. */
export interface VersionRegistration {
  manifest: PluginManifest
  code: string
  sourceMap?: string | null
  publisherId?: string | null
  /** Who registered it (`system:dev-kernel`, `api_key:<id>`). */
  createdBy: string
  /** `checking` (the marketplace's checks run next) or `approved` (a direct registration, attested in the platform's audit chain). */
  status: 'checking' | 'approved'
  artifact?: { sha256: string; signature: string; keyId: string; changelog?: string }
  /** Results of the checks already made. */
  checks?: unknown[]
}

/** A reviewer's decision, stored with the version. */
export interface Review {
  reason: string
  reviewer: { kind: string; id: string; userId: string }
  /** Who/where, for the attestation an approval writes into the platform's audit chain. */
  meta: Pick<AuditRecord, 'actor' | 'ip' | 'requestId'>
}

/** The only writer of version state (see the module comment). */
export interface VersionRegistry {
  register(tx: ExtensionTx, reg: VersionRegistration): Promise<{ id: string; status: VersionStatus; sha256: string }>
  /** Claims one version in `checking` whose lease ran out (or was never taken), for `leaseSeconds`. */
  claimForChecks(tx: ExtensionTx, leaseSeconds: number): Promise<ClaimedVersion | undefined>
  /** Gives a claim back (the checks did not reach a verdict); the attempt does not count. */
  releaseClaim(tx: ExtensionTx, id: string): Promise<void>
  /** checking → in_review or failed_checks, with every check result. */
  checked(
    tx: ExtensionTx,
    id: string,
    verdict: { status: 'in_review' | 'failed_checks'; checks: unknown[] },
  ): Promise<VersionState | undefined>
  /** in_review → approved; records the approved digest in the platform's audit chain (what the kernel verifies at every load). */
  approve(tx: ExtensionTx, id: string, review: Review): Promise<VersionState | undefined>
  /** in_review → rejected. */
  reject(tx: ExtensionTx, id: string, review: Review): Promise<VersionState | undefined>
  /** approved → blocked (the kill switch): installations stop serving. */
  block(tx: ExtensionTx, id: string, reason: string): Promise<VersionState | undefined>
  /** blocked → approved. */
  unblock(tx: ExtensionTx, id: string): Promise<VersionState | undefined>
  /** A version by id (`lock`: held until the transaction ends), without its code. */
  get(tx: ExtensionTx, id: string, opts?: { lock?: boolean }): Promise<VersionState | undefined>
  /** The versions of a plugin, without code. */
  versionsOf(tx: ExtensionTx, name: string): Promise<VersionState[]>
  /** Every version in a status (all plugins), oldest first, without code; `page` reads `limit` after the id `after`. */
  inStatus(
    tx: ExtensionTx,
    status: VersionStatus,
    page?: { after?: string | null; limit?: number },
  ): Promise<VersionState[]>
  /** A publisher's versions of every plugin, in every status, newest first, without code; `page` reads `limit` before the id `before`. */
  publishedBy(
    tx: ExtensionTx,
    publisherId: string,
    page?: { before?: string | null; limit?: number },
  ): Promise<VersionState[]>
  /** The listed plugins: each one's newest approved version, by name, filtered and paged (see {@link ListedQuery}). */
  listed(tx: ExtensionTx, query: ListedQuery): Promise<VersionState[]>
}

/** Which listed plugins to read: every filter is optional; names ascend, `limit` after the name `after`. */
export interface ListedQuery {
  /** Text in the name or the manifest's description (case-insensitive). */
  text?: string | null
  /** A category the manifest lists. */
  category?: string | null
  publisherId?: string | null
  /** Only these plugins (a channel catalog's allow-list). */
  names?: readonly string[] | null
  after?: string | null
  limit: number
}

const COLUMNS = `id, name, version, sha256, manifest, publisher_id, status, created_at, created_by, artifact_sha256, signature, key_id,
  changelog, checks, review, blocked_reason, checks_attempts`

/**
 * Inserts a version row — the one insert of `plugin_versions` (the kernel's own registration
 * with its sandbox probe goes through here too), attesting a direct approval.
 */
export async function insertVersion(
  tx: Tx,
  reg: Omit<VersionRegistration, 'status'> & { status: VersionStatus },
  opts: { attest?: boolean } = {},
): Promise<VersionState & { code: string }> {
  const sha256 = createHash('sha256').update(reg.code).digest('hex')
  const a = reg.artifact
  const [row] = await tx.sql<VersionState & { code: string }>(
    `insert into plugin_versions (id, name, version, sha256, manifest, code, source_map, publisher_id, created_by, status, artifact_sha256, signature, key_id, changelog, checks)
     values (?::uuid, ?, ?, ?, ?::jsonb, ?, ?, ?::uuid, ?, ?, ?, ?, ?::uuid, ?, ?::jsonb) returning *`,
    [
      uuidv7(),
      reg.manifest.name,
      reg.manifest.version,
      sha256,
      JSON.stringify(reg.manifest),
      reg.code,
      reg.sourceMap ?? null,
      reg.publisherId ?? null,
      reg.createdBy,
      reg.status,
      a?.sha256 ?? null,
      a?.signature ?? null,
      a?.keyId ?? null,
      a?.changelog ?? '',
      JSON.stringify(reg.checks ?? []),
    ],
  )
  if (opts.attest ?? reg.status === 'approved')
    // The digest registered, in the platform's audit chain: what the kernel verifies the stored
    // code against whenever it loads the version (a row rewritten later does not match it).
    await appendAudit(tx, PLATFORM_ORG, {
      actor: { kind: 'system', id: reg.createdBy },
      action: ATTESTING_ACTIONS.registered,
      target: { kind: 'plugin_version', id: row!.id },
      data: { plugin: reg.manifest.name, version: reg.manifest.version, sha256 },
    })
  return row!
}

/**
 * The registry over a database, telling `forget` about every version a transaction changed
 * (call {@link settle} with the transaction once it committed).
 */
export function createVersionRegistry(
  forget: (id: string) => void,
): VersionRegistry & { settle(tx: ExtensionTx): string[] } {
  const touched = new WeakMap<ExtensionTx, Set<string>>()
  const touch = (tx: ExtensionTx, id: string | undefined) => {
    if (!id) return
    forget(id)
    const set = touched.get(tx) ?? new Set<string>()
    set.add(id)
    touched.set(tx, set)
  }
  const move = async (
    tx: ExtensionTx,
    id: string,
    from: VersionStatus,
    set: string,
    params: unknown[],
  ): Promise<VersionState | undefined> => {
    const [row] = await tx.sql<VersionState>(
      `update plugin_versions set ${set} where id = ?::uuid and status = ? returning ${COLUMNS}`,
      [...params, id, from],
    )
    touch(tx, row?.id)
    return row
  }
  const decide = (tx: ExtensionTx, id: string, status: 'approved' | 'rejected', review: Review) => {
    const stored = { decision: status, reason: review.reason, reviewer: review.reviewer, at: new Date().toISOString() }
    return move(tx, id, 'in_review', 'status = ?, review = ?::jsonb', [status, JSON.stringify(stored)])
  }
  return {
    async register(tx, reg) {
      const row = await insertVersion(tx as Tx, reg)
      touch(tx, row.id)
      return { id: row.id, status: row.status, sha256: row.sha256 }
    },
    async claimForChecks(tx, leaseSeconds) {
      const [row] = await tx.sql<ClaimedVersion>(
        `update plugin_versions set checks_lease_until = now() + make_interval(secs => ?), checks_attempts = checks_attempts + 1
          where id = (select id from plugin_versions where status = 'checking' and (checks_lease_until is null or checks_lease_until < now())
                       order by id limit 1 for update skip locked)
          returning ${COLUMNS}, code, source_map`,
        [leaseSeconds],
      )
      return row
    },
    async releaseClaim(tx, id) {
      await tx.sql(
        `update plugin_versions set checks_lease_until = null, checks_attempts = greatest(checks_attempts - 1, 0) where id = ?::uuid and status = 'checking'`,
        [id],
      )
    },
    checked: (tx, id, verdict) =>
      move(tx, id, 'checking', 'status = ?, checks = ?::jsonb, checks_lease_until = null', [
        verdict.status,
        JSON.stringify(verdict.checks),
      ]),
    async approve(tx, id, review) {
      const row = await decide(tx, id, 'approved', review)
      if (row)
        await appendAudit(tx as Tx, PLATFORM_ORG, {
          ...review.meta,
          action: ATTESTING_ACTIONS.approved,
          target: { kind: 'plugin_version', id: row.id },
          data: {
            plugin: row.name,
            version: row.version,
            sha256: row.sha256,
            artifactSha256: row.artifact_sha256,
            reason: review.reason,
          },
        })
      return row
    },
    reject: (tx, id, review) => decide(tx, id, 'rejected', review),
    block: (tx, id, reason) => move(tx, id, 'approved', 'status = ?, blocked_reason = ?', ['blocked', reason]),
    unblock: (tx, id) => move(tx, id, 'blocked', 'status = ?, blocked_reason = null', ['approved']),
    async get(tx, id, opts = {}) {
      const [row] = await tx.sql<VersionState>(
        `select ${COLUMNS} from plugin_versions where id = ?::uuid${opts.lock ? ' for update' : ''}`,
        [id],
      )
      return row
    },
    versionsOf: (tx, name) =>
      tx.sql<VersionState>(`select ${COLUMNS} from plugin_versions where name = ? order by id`, [name]),
    inStatus: (tx, status, page = {}) =>
      tx.sql<VersionState>(
        `select ${COLUMNS} from plugin_versions where status = ? and (?::uuid is null or id > ?::uuid) order by id limit ?`,
        [status, page.after ?? null, page.after ?? null, page.limit ?? null],
      ),
    publishedBy: (tx, publisherId, page = {}) =>
      tx.sql<VersionState>(
        `select ${COLUMNS} from plugin_versions where publisher_id = ?::uuid and (?::uuid is null or id < ?::uuid) order by id desc limit ?`,
        [publisherId, page.before ?? null, page.before ?? null, page.limit ?? 100],
      ),
    listed: (tx, q) =>
      tx.sql<VersionState>(
        `select * from (select distinct on (name) ${COLUMNS} from plugin_versions where status = 'approved' order by name, id desc) l
          where (?::text is null or l.name ilike '%' || ? || '%' or coalesce(l.manifest ->> 'description', '') ilike '%' || ? || '%')
            and (?::text is null or coalesce(l.manifest -> 'categories', '[]'::jsonb) @> jsonb_build_array(?::text))
            and (?::uuid is null or l.publisher_id = ?::uuid)
            and (?::text[] is null or l.name = any(?::text[]))
            and (?::text is null or l.name > ?)
          order by l.name limit ?`,
        [
          ...[q.text, q.text, q.text, q.category, q.category, q.publisherId, q.publisherId].map((x) => x ?? null),
          q.names ? [...q.names] : null,
          q.names ? [...q.names] : null,
          q.after ?? null,
          q.after ?? null,
          q.limit,
        ],
      ),
    settle(tx) {
      const ids = [...(touched.get(tx) ?? [])]
      for (const id of ids) forget(id)
      touched.delete(tx)
      return ids
    },
  }
}
