import { v7 as uuidv7 } from 'uuid'
import type { Tx } from '../db/database.js'

/** Who did something: a user, an API key, the system, or a plugin (later). */
export interface Actor {
  kind: 'user' | 'api_key' | 'system' | 'anonymous' | 'plugin'
  id: string
}

/** One security-relevant act, as the caller describes it. */
export interface AuditRecord {
  action: string
  actor: Actor
  target?: { kind: string; id: string }
  data?: Record<string, unknown>
  ip?: string | null
  requestId?: string | null
}

// In JSON.stringify's output a NUL is the escape \u0000 and a lone surrogate an escape \udxxx
// (paired ones are written as they are); PostgreSQL's jsonb refuses both. An escape is one
// only when preceded by an even number of backslashes.
const UNSTORABLE_ESCAPE = /(?<!\\)((?:\\\\)*)\\u(0000|d[89a-f][0-9a-f]{2})/g

/**
 * `data` as JSON text PostgreSQL stores: a NUL or a lone surrogate in any string (key or value)
 * becomes the six characters of its escape (`\u0000`), so an entry can always be written —
 * whatever text a plugin or a request put into it — and reads back the same every time, which
 * keeps the hash chain verifiable.
 */
export function storableJson(value: unknown): string {
  const json = JSON.stringify(value)
  return json.includes('\\u') ? json.replace(UNSTORABLE_ESCAPE, '$1\\\\u$2') : json
}

/** A text column's value without NUL (which PostgreSQL text refuses), escaped the same way. */
export function storableText<T extends string | null>(value: T): T {
  return (value?.includes('\0') ? value.replace(/\0/g, '\\u0000') : value) as T
}

/** Columns and values of one audit row, for composing into a larger statement. */
export function auditRow(tenantId: string, rec: AuditRecord): unknown[] {
  return [
    uuidv7(),
    tenantId,
    new Date().toISOString(),
    rec.actor.kind,
    storableText(rec.actor.id),
    storableText(rec.action),
    storableText(rec.target?.kind ?? null),
    storableText(rec.target?.id ?? null),
    storableJson(rec.data ?? {}),
    storableText(rec.ip ?? null),
    storableText(rec.requestId ?? null),
  ]
}

/** The VALUES part matching {@link auditRow}. */
export const AUDIT_COLUMNS =
  '(id, tenant_id, at, actor_kind, actor_id, action, target_kind, target_id, data, ip, request_id)'
export const AUDIT_VALUES = '(?::uuid, ?::uuid, ?::timestamptz, ?, ?, ?, ?, ?, ?::jsonb, ?, ?)'

/**
 * Appends entries in the caller's transaction: they commit or roll back with the change they
 * describe. Entries are unsealed here (no seq, no hash) so writers never wait on each other;
 * the {@link AuditSealer} chains them in order just after commit.
 */
export async function appendAudit(tx: Tx, tenantId: string, ...records: AuditRecord[]): Promise<void> {
  if (records.length === 0) return
  await tx.sql(
    `insert into audit_log ${AUDIT_COLUMNS} values ${records.map(() => AUDIT_VALUES).join(', ')}`,
    records.flatMap((r) => auditRow(tenantId, r)),
  )
}
