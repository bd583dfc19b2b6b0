/**
 * Right to erasure: a tenant admin erases a data subject (a customer contact, say) across every
 * installed plugin whose collections declare a field identifying that kind of subject
 * (`"subject": "<kind>"` on the field in the manifest). In each record about the subject every
 * `personal` and `sensitive-personal` field is removed — value, blind-index token and
 * ciphertext — and the kernel's own copies of those values are erased too (erasure-copies.ts).
 * The erasure is audited without the identifier, and its report kept (`erasures`), naming the
 * subject only by a keyed token.
 */
import { encryptedFields } from '@trellis/plugin-sdk'
import { v7 as uuidv7 } from 'uuid'
import { appendAudit, type AuditRecord } from '../audit/audit-log.js'
import { sqlArray, type Tx } from '../db/database.js'
import { MAX_LIMIT, type CollectionRef, type CollectionStore, type CollectionIndex } from '../plugins/data/index.js'
import { blindToken } from './blind-index.js'
import { eraseKernelCopies, type KernelCopiesErased } from './erasure-copies.js'
import { GOV } from './errors.js'
import { SEALED_PREFIX } from './protected-fields.js'
import { tenantCollections } from './retention-targets.js'
import type { TenantKeyring } from './tenant-keys.js'

/** What one erasure erased where. */
export interface ErasureReport {
  id: string
  subjectKind: string
  at: string
  requestedBy: string
  /** Per collection holding data about the subject: the records and the fields erased in them. */
  plugins: Array<{ plugin: string; collection: string; subjectField: string; records: string[]; fields: string[] }>
  kernel: KernelCopiesErased
}

export interface ErasureDeps {
  /** The plugin host's collection store (decrypts to find the values to erase elsewhere). */
  store: CollectionStore
  keyring: TenantKeyring
}

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v)

/** The top-level fields of a collection schema that identify a subject, with its kind. */
export function subjectFields(schema: unknown): Array<{ field: string; kind: string }> {
  if (!isObj(schema) || !isObj(schema.properties)) return []
  return Object.entries(schema.properties).flatMap(([field, p]) =>
    isObj(p) && typeof p.subject === 'string' ? [{ field, kind: p.subject }] : [],
  )
}

function collectStrings(value: unknown, into: Set<string>, depth = 0): void {
  if (depth > 8) return
  if (typeof value === 'string') into.add(value)
  else if (typeof value === 'number') into.add(String(value))
  else if (Array.isArray(value)) for (const v of value) collectStrings(v, into, depth + 1)
  else if (isObj(value)) for (const v of Object.values(value)) collectStrings(v, into, depth + 1)
}

/** Erases the subject `identifier` of `subjectKind` in the tenant whose transaction this is. */
export async function eraseSubject(
  tx: Tx,
  deps: ErasureDeps,
  subject: { kind: string; identifier: string },
  actor: { kind: string; id: string },
): Promise<ErasureReport> {
  const holding = (await tenantCollections(tx)).flatMap((c) =>
    subjectFields(c.schema)
      .filter((s) => s.kind === subject.kind)
      .map((s) => ({ ...c, subjectField: s.field })),
  )
  if (!holding.length) throw GOV.SUBJECT_KIND_UNKNOWN({ subjectKind: subject.kind })
  const values = new Set<string>([subject.identifier])
  const recordIds: string[] = []
  const plugins: ErasureReport['plugins'] = []
  for (const c of holding) {
    const ref: CollectionRef = {
      plugin: c.plugin,
      name: c.collection,
      schema: c.schema,
      indexes: c.indexes as CollectionIndex[] | undefined,
    }
    const personal = encryptedFields(c.schema)
    const ids: string[] = []
    let cursor: string | undefined
    do {
      const page = await deps.store.find(tx, ref, {
        where: { [c.subjectField]: subject.identifier },
        limit: MAX_LIMIT,
        ...(cursor ? { cursor } : {}),
      })
      for (const r of page.items) {
        ids.push(r.id)
        for (const f of personal) collectStrings(r[f], values)
      }
      cursor = page.nextCursor ?? undefined
    } while (cursor)
    if (ids.length && personal.length)
      await tx.sql(
        `update plugin_records set data = data - ?::text[], version = version + 1, updated_at = now()
          where plugin = ? and collection = ? and id = any(?::uuid[])`,
        [
          sqlArray([...personal, ...personal.map((f) => `${SEALED_PREFIX}${f}`)]),
          c.plugin,
          c.collection,
          sqlArray(ids),
        ],
      )
    recordIds.push(...ids)
    plugins.push({
      plugin: c.plugin,
      collection: c.collection,
      subjectField: c.subjectField,
      records: ids,
      fields: personal,
    })
  }
  const kernel = await eraseKernelCopies(tx, values, recordIds)
  const keys = await deps.keyring.active(tx)
  const report: ErasureReport = {
    id: uuidv7(),
    subjectKind: subject.kind,
    at: new Date().toISOString(),
    requestedBy: `${actor.kind}:${actor.id}`,
    plugins,
    kernel,
  }
  await tx.sql(
    `insert into erasures (id, subject_kind, subject_token, requested_by, at, report) values (?::uuid, ?, ?, ?, ?::timestamptz, ?::jsonb)`,
    [
      report.id,
      subject.kind,
      blindToken(keys.index, `erasure\u0000${subject.kind}`, subject.identifier),
      report.requestedBy,
      report.at,
      JSON.stringify(report),
    ],
  )
  return report
}

/** The audit entry of an erasure: counts and places, never the identifier or a value. */
export function erasureAuditData(r: ErasureReport): Record<string, unknown> {
  return {
    subjectKind: r.subjectKind,
    records: r.plugins.map((p) => ({ plugin: p.plugin, collection: p.collection, records: p.records.length })),
    kernel: r.kernel,
  }
}

/** Audits an erasure in the tenant's chain. */
export function auditErasure(
  tx: Tx,
  tenantId: string,
  r: ErasureReport,
  meta: Pick<AuditRecord, 'actor' | 'ip' | 'requestId'>,
): Promise<void> {
  return appendAudit(tx, tenantId, {
    ...meta,
    action: 'governance.subject.erased',
    target: { kind: 'erasure', id: r.id },
    data: erasureAuditData(r),
  })
}

/** The tenant's erasure reports, newest first, or the one with `id`. */
export async function listErasures(tx: Tx, id?: string): Promise<ErasureReport[]> {
  const rows = await tx.sql<{ report: ErasureReport }>(
    `select report from erasures where (?::uuid is null or id = ?::uuid) order by id desc limit 200`,
    [id ?? null, id ?? null],
  )
  return rows.map((r) => r.report)
}
