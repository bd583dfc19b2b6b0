import { v7 as uuidv7 } from 'uuid'
import type { Tx } from '../db/database.js'
import { PLATFORM_ORG } from '../db/database.js'
import { KRN } from '../errors.js'
import type { AuditRecord } from '../audit/audit-log.js'
import { auditedWrite } from '../audit/audited-write.js'
import { assertPasswordStrength, hashPassword } from '../identity/passwords.js'
import type { Branding } from './entities.js'
import type { OrgKind } from '../identity/entities.js'
import { kernelEvent } from '../events/outbox.js'

export interface NewOrgAdmin {
  email: string
  name: string
  password?: string
  /** Set by {@link prepareAdmin}: hashing is slow, so it happens before any transaction opens. */
  passwordHash?: string
}

/** Checks and hashes a new admin's password up front, so a weak one fails before anything is written. */
export async function prepareAdmin(admin: NewOrgAdmin): Promise<NewOrgAdmin> {
  if (admin.password === undefined) return admin
  assertPasswordStrength(admin.password)
  return { ...admin, passwordHash: await hashPassword(admin.password) }
}

export interface TenantRow {
  id: string
  name: string
  slug: string
  partner_id: string | null
  status: string
  created_at: Date
  suspended_at: Date | null
}

export interface PartnerRow {
  id: string
  name: string
  slug: string
  status: string
  branding: Branding
  created_at: Date
}

type Meta = Pick<AuditRecord, 'actor' | 'ip' | 'requestId'>

/**
 * Gives a new account a built-in role in an organisation (an organisation's first admin, the
 * demo's accounts). Runs inside the organisation's own transaction, which sees only its own
 * members' accounts: an address that belongs to an account elsewhere is refused — that person
 * joins through an invitation they accept (ADR 0014), never by being named.
 */
export async function addMember(
  tx: Tx,
  orgId: string,
  orgKind: OrgKind,
  roleName: string,
  admin: NewOrgAdmin,
  meta: Meta,
): Promise<string> {
  let [user] = await tx.sql<{ id: string }>('select id from users where lower(email) = lower(?)', [admin.email])
  if (!user) {
    if (!admin.password) throw KRN.VALIDATION_FAILED({ reason: 'admin.password is required for a new user' })
    const hash = admin.passwordHash ?? (await prepareAdmin(admin)).passwordHash!
    user = { id: uuidv7() }
    try {
      await tx.sql('insert into users (id, email, name, password_hash) values (?::uuid, ?, ?, ?)', [
        user.id,
        admin.email,
        admin.name,
        hash,
      ])
    } catch (err) {
      if ((err as { code?: string }).code === '23505')
        throw KRN.CONFLICT({
          reason:
            'that address cannot be given a new account; create the organisation without an admin and invite the person',
        })
      throw err
    }
  }
  const [role] = await tx.sql<{ id: string }>('select id from roles where builtin and name = ?', [roleName])
  const userId = user.id
  await auditedWrite(tx, {
    write: {
      sql: 'insert into memberships (id, tenant_id, org_kind, user_id, role_id) values (?::uuid, ?::uuid, ?, ?::uuid, ?::uuid) on conflict (tenant_id, user_id) do nothing returning id',
      params: [uuidv7(), orgId, orgKind, userId, role!.id],
    },
    auditOrg: orgId,
    audit: {
      ...meta,
      action: 'membership.created',
      target: { kind: 'user', id: userId },
      data: { email: admin.email, role: roleName },
    },
    events: [
      kernelEvent('kernel.membership.created', `user/${userId}`, { userId, email: admin.email, role: roleName }),
    ],
  })
  return user.id
}

export async function slugTaken(tx: Tx, table: 'tenants' | 'partners', slug: string): Promise<void> {
  const [row] = await tx.sql(`select 1 from ${table} where slug = ?`, [slug])
  if (row) throw KRN.CONFLICT({ reason: `the slug ${slug} is taken` })
}

export function isPlatform(orgId: string): boolean {
  return orgId === PLATFORM_ORG
}
