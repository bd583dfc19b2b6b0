import { randomBytes, timingSafeEqual } from 'node:crypto'
import { v7 as uuidv7 } from 'uuid'
import type { Tx } from '../db/database.js'
import { AUTH, KRN } from '../errors.js'
import type { AuditRecord } from '../audit/audit-log.js'
import { auditedWrite } from '../audit/audited-write.js'
import { kernelEvent } from '../events/outbox.js'
import type { OrgKind } from './entities.js'
import type { RoleRow } from './roles.js'
import { hashToken } from './sessions.js'
import type { Account } from './signin.js'

/** How long an invitation can be accepted. */
export const INVITATION_TTL_DAYS = 7

const TOKEN = /^tri_([0-9a-f]{32})_([A-Za-z0-9_-]{43})$/

export interface InvitationRow {
  id: string
  tenant_id: string
  org_kind: OrgKind
  email: string
  role_id: string
  token_hash: string
  expires_at: Date
  accepted_at: Date | null
  revoked_at: Date | null
}

type Meta = Pick<AuditRecord, 'actor' | 'ip' | 'requestId'>

/**
 * Invites an address into the organisation with a role. Nothing about an account that may own
 * the address is read: the answer is the same whether it exists or not. A pending invitation to
 * the same address is replaced. Returns the invitation's id and its accept token (shown once).
 */
export async function createInvitation(
  tx: Tx,
  orgId: string,
  orgKind: OrgKind,
  email: string,
  role: RoleRow,
  invitedBy: string,
  meta: Meta,
): Promise<{ id: string; token: string; expiresAt: Date }> {
  // Members are visible to whoever may invite: saying so reveals nothing about other organisations.
  const [member] = await tx.sql(
    'select 1 from memberships m join users u on u.id = m.user_id where lower(u.email) = lower(?)',
    [email],
  )
  if (member) throw KRN.CONFLICT({ reason: 'that address belongs to a member already' })
  await tx.sql(
    'update invitations set revoked_at = now() where lower(email) = lower(?) and accepted_at is null and revoked_at is null',
    [email],
  )
  const id = uuidv7()
  const secret = randomBytes(32).toString('base64url')
  const [row] = await auditedWrite<{ expires_at: Date }>(tx, {
    write: {
      sql: `insert into invitations (id, tenant_id, org_kind, email, role_id, token_hash, invited_by, expires_at)
            values (?::uuid, ?::uuid, ?, ?, ?::uuid, ?, ?::uuid, now() + interval '${INVITATION_TTL_DAYS} days') returning expires_at`,
      params: [id, orgId, orgKind, email, role.id, hashToken(secret), invitedBy],
    },
    auditOrg: orgId,
    audit: {
      ...meta,
      action: 'invitation.created',
      target: { kind: 'invitation', id },
      data: { email, role: role.name },
    },
  })
  return { id, token: `tri_${id.replace(/-/g, '')}_${secret}`, expiresAt: row!.expires_at }
}

/** The invitation id a token names, or throws; the secret is checked by {@link checkInvitation}. */
export function parseInvitationToken(token: string): { id: string; secret: string } {
  const m = TOKEN.exec(token)
  if (!m) throw AUTH.INVITATION_INVALID()
  const h = m[1]!
  return {
    id: `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`,
    secret: m[2]!,
  }
}

/** Throws unless the invitation exists, its secret matches, and it can still be accepted. */
export function checkInvitation(inv: InvitationRow | undefined, secret: string): InvitationRow {
  const expected = Buffer.from(inv?.token_hash ?? '0'.repeat(64), 'hex')
  const matches = timingSafeEqual(expected, Buffer.from(hashToken(secret), 'hex'))
  if (!inv || !matches || inv.accepted_at || inv.revoked_at || new Date(inv.expires_at).getTime() <= Date.now())
    throw AUTH.INVITATION_INVALID()
  return inv
}

/**
 * In the inviting organisation's transaction: marks the invitation accepted (once), creates the
 * account when `newAccount` is given, and makes it a member with the invited role.
 */
export async function acceptInvitation(
  tx: Tx,
  inv: InvitationRow,
  who: { account: Account } | { newAccount: { name: string; passwordHash: string } },
  meta: Meta,
): Promise<{ userId: string; role: string }> {
  const userId = 'account' in who ? who.account.id : uuidv7()
  const claimed = await tx.sql(
    'update invitations set accepted_at = now(), accepted_by = ?::uuid where id = ?::uuid and accepted_at is null and revoked_at is null and expires_at > now() returning id',
    [userId, inv.id],
  )
  if (claimed.length === 0) throw AUTH.INVITATION_INVALID()
  if ('newAccount' in who) {
    try {
      await tx.sql('insert into users (id, email, name, password_hash) values (?::uuid, ?, ?, ?)', [
        userId,
        inv.email,
        who.newAccount.name,
        who.newAccount.passwordHash,
      ])
    } catch (err) {
      // An account with this address appeared since the invitation was checked.
      if ((err as { code?: string }).code === '23505') throw AUTH.INVITATION_ACCOUNT_REQUIRED()
      throw err
    }
  }
  const [role] = await tx.sql<{ name: string }>('select name from roles where id = ?::uuid', [inv.role_id])
  if (!role) throw AUTH.INVITATION_INVALID()
  const actor = { ...meta, actor: { kind: 'user' as const, id: userId } }
  const inserted = await auditedWrite(tx, {
    write: {
      sql: 'insert into memberships (id, tenant_id, org_kind, user_id, role_id) values (?::uuid, ?::uuid, ?, ?::uuid, ?::uuid) on conflict (tenant_id, user_id) do nothing returning id',
      params: [uuidv7(), inv.tenant_id, inv.org_kind, userId, inv.role_id],
    },
    auditOrg: inv.tenant_id,
    audit: [
      {
        ...actor,
        action: 'invitation.accepted',
        target: { kind: 'invitation', id: inv.id },
        data: { email: inv.email, role: role.name, newAccount: 'newAccount' in who },
      },
      {
        ...actor,
        action: 'membership.created',
        target: { kind: 'user', id: userId },
        data: { email: inv.email, role: role.name, invitation: inv.id },
      },
    ],
    events: [kernelEvent('kernel.membership.created', `user/${userId}`, { userId, email: inv.email, role: role.name })],
  })
  if (inserted.length === 0) throw KRN.CONFLICT({ reason: 'you are a member already' })
  return { userId, role: role.name }
}
