import { EntitySchema } from '@mikro-orm/core'

export interface AuditEntry {
  id: string
  tenantId: string
  seq: string | null
  at: Date
  actorKind: string
  actorId: string
  action: string
  targetKind: string | null
  targetId: string | null
  data: Record<string, unknown>
  ip: string | null
  requestId: string | null
  prevHash: string | null
  hash: string | null
}

export const AuditEntrySchema = new EntitySchema<AuditEntry>({
  name: 'AuditEntry',
  tableName: 'audit_log',
  properties: {
    id: { type: 'uuid', primary: true },
    tenantId: { type: 'uuid', fieldName: 'tenant_id' },
    seq: { type: 'bigint', nullable: true },
    at: { type: 'datetime' },
    actorKind: { type: 'text', fieldName: 'actor_kind' },
    actorId: { type: 'text', fieldName: 'actor_id' },
    action: { type: 'text' },
    targetKind: { type: 'text', fieldName: 'target_kind', nullable: true },
    targetId: { type: 'text', fieldName: 'target_id', nullable: true },
    data: { type: 'json' },
    ip: { type: 'text', nullable: true },
    requestId: { type: 'text', fieldName: 'request_id', nullable: true },
    prevHash: { type: 'text', fieldName: 'prev_hash', nullable: true },
    hash: { type: 'text', nullable: true },
  },
})
