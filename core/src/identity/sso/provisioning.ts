import { v7 as uuidv7 } from 'uuid'
import type { Tx } from '../../db/database.js'
import { PLATFORM_ORG } from '../../db/database.js'
import { auditedWrite } from '../../audit/audited-write.js'
import type { AuditRecord } from '../../audit/audit-log.js'
import { kernelEvent } from '../../events/outbox.js'
import type { OrgKind } from '../entities.js'
import { findAssignableRole } from '../roles.js'

export interface ProviderRow {
  tenant_id: string
  issuer: string
  client_id: string
  client_secret_sealed: string
  allowed_domains: string[]
  role_claim: string | null
  role_map: Record<string, string>
  default_role: string
  sso_only: boolean
  enabled: boolean
}

/** Which kind of organisation an id names (in its own transaction). */
export async function orgKindOf(tx: Tx, orgId: string): Promise<OrgKind | undefined> {
  if (orgId === PLATFORM_ORG) return 'platform'
  const [row] = await tx.sql<{ kind: OrgKind }>(
    `select 'tenant' as kind from tenants where id = ?::uuid union all select 'partner' from partners where id = ?::uuid`,
    [orgId, orgId],
  )
  return row?.kind
}

/** The role the provider's claims map to: the first claim value with a mapping, else the default. */
export function mappedRole(
  p: Pick<ProviderRow, 'role_claim' | 'role_map' | 'default_role'>,
  claims: Record<string, unknown>,
): string {
  if (p.role_claim) {
    const raw = claims[p.role_claim]
    const values = Array.isArray(raw) ? raw : raw === undefined ? [] : [raw]
    for (const v of values) if (typeof v === 'string' && p.role_map[v]) return p.role_map[v]
  }
  return p.default_role
}

/** Whether the provider may vouch for this address: its domain is one of the allowed ones. */
export function domainAllowed(allowed: string[], email: string): boolean {
  const at = email.lastIndexOf('@')
  const domain = email.slice(at + 1).toLowerCase()
  return at > 0 && allowed.some((d) => d.toLowerCase() === domain)
}

/**
 * Just-in-time membership, in the organisation's transaction: the account with this address
 * (created, without a password, when none exists) becomes a member with the mapped role if it
 * is not one already; an existing member keeps the role the organisation gave it.
 */
export async function provisionMember(
  tx: Tx,
  org: { id: string; kind: OrgKind },
  who: { existing?: string; email: string; name: string; role: string },
  meta: Pick<AuditRecord, 'ip' | 'requestId'>,
): Promise<{ userId: string; created: boolean; joined: boolean }> {
  let userId = who.existing
  let created = false
  if (!userId) {
    userId = uuidv7()
    await tx.sql('insert into users (id, email, name, password_hash) values (?::uuid, ?, ?, null)', [
      userId,
      who.email,
      who.name,
    ])
    created = true
  }
  const [member] = await tx.sql('select 1 from memberships where user_id = ?::uuid and tenant_id = ?::uuid', [
    userId,
    org.id,
  ])
  if (member) return { userId, created, joined: false }
  const role = await findAssignableRole(tx, org.id, org.kind, who.role)
  const actor = { ...meta, actor: { kind: 'user' as const, id: userId } }
  await auditedWrite(tx, {
    write: {
      sql: 'insert into memberships (id, tenant_id, org_kind, user_id, role_id) values (?::uuid, ?::uuid, ?, ?::uuid, ?::uuid) returning id',
      params: [uuidv7(), org.id, org.kind, userId, role.id],
    },
    auditOrg: org.id,
    audit: {
      ...actor,
      action: 'membership.created',
      target: { kind: 'user', id: userId },
      data: { email: who.email, role: role.name, via: 'sso', newAccount: created },
    },
    events: [kernelEvent('kernel.membership.created', `user/${userId}`, { userId, email: who.email, role: role.name })],
  })
  return { userId, created, joined: true }
}
