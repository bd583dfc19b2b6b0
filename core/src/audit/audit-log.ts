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

/** Columns and values of one audit row, for composing into a larger statement. */
export function auditRow(tenantId: string, rec: AuditRecord): unknown[] {
  return [
    uuidv7(),
    tenantId,
    new Date().toISOString(),
    rec.actor.kind,
    rec.actor.id,
    rec.action,
    rec.target?.kind ?? null,
    rec.target?.id ?? null,
    JSON.stringify(rec.data ?? {}),
    rec.ip ?? null,
    rec.requestId ?? null,
  ]
}

/** The VALUES part matching {@link auditRow}. */
export const AUDIT_COLUMNS = '(id, tenant_id, at, actor_kind, actor_id, action, target_kind, target_id, data, ip, request_id)'
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
