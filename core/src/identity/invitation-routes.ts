import { Type } from '@sinclair/typebox'
import type { Api } from '../http/types.js'
import { orgTx, type KernelContext } from '../kernel-context.js'
import { AUTH, KRN } from '../errors.js'
import { appendAudit } from '../audit/audit-log.js'
import { auditMeta, principalOf, requirePermission } from '../http/guards.js'
import { PageQuery, pageOf, decodeCursor, toPage } from '../http/pagination.js'
import { DEFAULT_HTTP_LIMITS } from '../http/server-limits.js'
import { KERNEL_PERMISSIONS as P, missingPermissions } from './permissions.js'
import { stillMissing } from '../plugins/grantable.js'
import { assertPasswordStrength, hashPassword, verifyPassword } from './passwords.js'
import { findAssignableRole } from './roles.js'
import { accountByEmail, signInTx } from './signin.js'
import {
  acceptInvitation,
  checkInvitation,
  createInvitation,
  parseInvitationToken,
  type InvitationRow,
} from './invitations.js'

const Uuid = Type.String({ format: 'uuid' })
const Invitation = Type.Object({
  id: Uuid,
  email: Type.String(),
  role: Type.String(),
  status: Type.Union([
    Type.Literal('pending'),
    Type.Literal('accepted'),
    Type.Literal('revoked'),
    Type.Literal('expired'),
  ]),
  invitedBy: Uuid,
  createdAt: Type.String({ format: 'date-time' }),
  expiresAt: Type.String({ format: 'date-time' }),
})

interface ListRow {
  id: string
  email: string
  role: string
  invited_by: string
  created_at: Date
  expires_at: Date
  accepted_at: Date | null
  revoked_at: Date | null
}

function toView(r: ListRow) {
  const status = r.accepted_at
    ? 'accepted'
    : r.revoked_at
      ? 'revoked'
      : new Date(r.expires_at).getTime() <= Date.now()
        ? 'expired'
        : 'pending'
  return {
    id: r.id,
    email: r.email,
    role: r.role,
    status: status as 'pending',
    invitedBy: r.invited_by,
    createdAt: new Date(r.created_at).toISOString(),
    expiresAt: new Date(r.expires_at).toISOString(),
  }
}

const LIST_SQL = `select i.id, i.email, r.name as role, i.invited_by, i.created_at, i.expires_at, i.accepted_at, i.revoked_at from invitations i join roles r on r.id = i.role_id`

/**
 * Invitations: the only way a person joins an organisation they are not a member of. The
 * inviting admin learns nothing about the address (whether it has an account, its name); the
 * person accepts with the one-time token, as the account that owns the address or as a new one.
 */
export function registerInvitationRoutes(app: Api, k: KernelContext): void {
  app.post(
    '/invitations',
    {
      preHandler: requirePermission(P.usersManage),
      schema: {
        tags: ['identity'],
        summary: 'Invite someone by email (the accept token is in this response only)',
        description:
          'The answer is the same whether or not an account owns the address. Until mail delivery exists, hand the accept token to the person; they accept it with POST /v1/invitations/accept.',
        body: Type.Object(
          {
            email: Type.String({ format: 'email', maxLength: 320 }),
            role: Type.String({ minLength: 1, maxLength: 100 }),
          },
          { additionalProperties: false },
        ),
        response: {
          201: Type.Object({
            invitation: Invitation,
            acceptToken: Type.String({ description: 'Shown once; stored only as a hash.' }),
          }),
        },
      },
    },
    async (request, reply) => {
      const p = principalOf(request)
      const { email, role } = request.body
      const created = await orgTx(k, p.orgId, async (tx) => {
        const target = await findAssignableRole(tx, p.orgId, p.orgKind, role)
        let missing = missingPermissions(p.permissions, target.permissions)
        if (missing.length) missing = await stillMissing(k, p, missing, tx)
        if (missing.length) throw AUTH.PERMISSION_ESCALATION({ permissions: missing })
        const inv = await createInvitation(tx, p.orgId, p.orgKind, email, target, p.userId, auditMeta(request))
        const [row] = await tx.sql<ListRow>(`${LIST_SQL} where i.id = ?::uuid`, [inv.id])
        return { invitation: toView(row!), acceptToken: inv.token }
      })
      return reply.code(201).send(created)
    },
  )

  app.get(
    '/invitations',
    {
      preHandler: requirePermission(P.usersRead),
      schema: {
        tags: ['identity'],
        summary: "Your organisation's invitations",
        querystring: Type.Object(PageQuery, { additionalProperties: false }),
        response: { 200: pageOf(Invitation) },
      },
    },
    async (request) => {
      const p = principalOf(request)
      const after = decodeCursor(request.query.cursor)
      const limit = request.query.limit ?? 50
      const rows = await orgTx(k, p.orgId, (tx) =>
        tx.sql<ListRow>(`${LIST_SQL} where (?::uuid is null or i.id > ?::uuid) order by i.id limit ?`, [
          after,
          after,
          limit + 1,
        ]),
      )
      const page = toPage(rows, limit)
      return { items: page.items.map(toView), nextCursor: page.nextCursor }
    },
  )

  app.delete(
    '/invitations/:id',
    {
      preHandler: requirePermission(P.usersManage),
      schema: {
        tags: ['identity'],
        summary: 'Revoke a pending invitation',
        params: Type.Object({ id: Uuid }),
        response: { 204: Type.Null() },
      },
    },
    async (request, reply) => {
      const p = principalOf(request)
      await orgTx(k, p.orgId, async (tx) => {
        const [inv] = await tx.sql<{ id: string; email: string; accepted_at: Date | null; revoked_at: Date | null }>(
          'select id, email, accepted_at, revoked_at from invitations where id = ?::uuid for update',
          [request.params.id],
        )
        if (!inv) throw KRN.NOT_FOUND({ what: 'invitation' })
        if (inv.accepted_at)
          throw KRN.CONFLICT({ reason: 'the invitation was accepted already; remove the member instead' })
        if (inv.revoked_at) return
        await tx.sql('update invitations set revoked_at = now() where id = ?::uuid', [inv.id])
        await appendAudit(tx, p.orgId, {
          ...auditMeta(request),
          action: 'invitation.revoked',
          target: { kind: 'invitation', id: inv.id },
          data: { email: inv.email },
        })
      })
      return reply.code(204).send(null)
    },
  )

  app.post(
    '/invitations/accept',
    {
      // May run scrypt twice (a password checked, a new one hashed): the sign-in limit per client address.
      config: {
        rateLimit: { max: (k.config.httpLimits ?? DEFAULT_HTTP_LIMITS).authRateLimitPerMinute, timeWindow: 60_000 },
        noStore: true,
      },
      schema: {
        tags: ['identity'],
        summary: 'Accept an invitation',
        description:
          "Signed in as the invited account (bearer token), or with that account's password, or — when no account owns the address — with a name and password for the new account.",
        security: [],
        body: Type.Object(
          {
            token: Type.String({ minLength: 1, maxLength: 200 }),
            name: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
            password: Type.Optional(Type.String({ minLength: 1, maxLength: 1024 })),
          },
          { additionalProperties: false },
        ),
        response: {
          200: Type.Object({ userId: Uuid, org: Type.Object({ id: Uuid, kind: Type.String(), role: Type.String() }) }),
        },
      },
    },
    async (request) => {
      const { token, name, password } = request.body
      const { id, secret } = parseInvitationToken(token)
      const found = await signInTx(k.db, async (tx) => {
        const [inv] = await tx.sql<InvitationRow>('select * from trellis_auth_invitation(?::uuid)', [id])
        const valid = checkInvitation(inv, secret)
        return { inv: valid, account: await accountByEmail(tx, valid.email) }
      })
      const { inv, account } = found
      const caller = request.principal
      let who: Parameters<typeof acceptInvitation>[2]
      if (account) {
        if (caller?.kind === 'user' && caller.userId === account.id) who = { account }
        else if (password !== undefined) {
          k.loginLimiter.check(inv.email, request.ip)
          if (!(await verifyPassword(password, account.password_hash))) {
            k.loginLimiter.failed(inv.email, request.ip)
            throw AUTH.INVALID_CREDENTIALS()
          }
          k.loginLimiter.succeeded(inv.email)
          who = { account }
        } else throw AUTH.INVITATION_ACCOUNT_REQUIRED()
        if (account.status !== 'active') throw AUTH.ACCOUNT_DISABLED()
      } else {
        if (name === undefined || password === undefined) throw AUTH.INVITATION_ACCOUNT_REQUIRED()
        assertPasswordStrength(password)
        who = { newAccount: { name, passwordHash: await hashPassword(password) } }
      }
      const accepted = await orgTx(k, inv.tenant_id, (tx) => acceptInvitation(tx, inv, who, auditMeta(request)))
      return { userId: accepted.userId, org: { id: inv.tenant_id, kind: inv.org_kind, role: accepted.role } }
    },
  )
}
