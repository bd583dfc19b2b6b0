import { Type } from '@sinclair/typebox'
import type { Api } from '../http/types.js'
import type { OrgTx } from '../http/route-deps.js'
import type { Principal } from './principal.js'
import type { Tx } from '../db/database.js'
import { AUTH, KRN } from '../errors.js'
import { auditedWrite } from '../audit/audited-write.js'
import { auditMeta, principalOf, requirePermission } from '../http/guards.js'
import { PageQuery, pageOf, pageAfterCursor } from '../http/pagination.js'
import { KERNEL_PERMISSIONS as P, missingPermissions } from './permissions.js'
import { findAssignableRole } from './roles.js'
import { createInvitation } from './invitations.js'
import type { Mailer } from '../mail/mailer.js'
import { invitationMail } from '../mail/templates.js'

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
export interface InvitationRouteDeps {
  orgTx: OrgTx
  /** Of the permissions a caller lacks, those it still may not grant (see plugins/grantable.ts). */
  stillMissing(p: Principal, missing: string[], tx: Tx): Promise<string[]>
  /** When a mail transport is configured, the accept link is mailed to the address instead of answered. */
  mailer?: Pick<Mailer, 'configured' | 'send' | 'link'>
}

export function registerInvitationRoutes(app: Api, deps: InvitationRouteDeps): void {
  app.post(
    '/invitations',
    {
      preHandler: requirePermission(P.usersManage),
      schema: {
        tags: ['identity'],
        summary: 'Invite someone by email',
        description:
          'The answer is the same whether or not an account owns the address. With mail configured (TRELLIS_SMTP_URL) the accept link is mailed to the address and the token is not in the answer; without, hand the accept token to the person. They accept it with POST /v1/invitations/accept.',
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
            acceptToken: Type.Optional(
              Type.String({ description: 'Only when no mail is configured; shown once, stored only as a hash.' }),
            ),
            emailed: Type.Boolean({ description: 'Whether the accept link was mailed to the address.' }),
          }),
        },
      },
    },
    async (request, reply) => {
      const p = principalOf(request)
      const { email, role } = request.body
      const created = await deps.orgTx(p.orgId, async (tx) => {
        const target = await findAssignableRole(tx, p.orgId, p.orgKind, role)
        let missing = missingPermissions(p.permissions, target.permissions)
        if (missing.length) missing = await deps.stillMissing(p, missing, tx)
        if (missing.length) throw AUTH.PERMISSION_ESCALATION({ permissions: missing })
        const inv = await createInvitation(tx, p.orgId, p.orgKind, email, target, p.userId, auditMeta(request))
        const [row] = await tx.sql<ListRow>(`${LIST_SQL} where i.id = ?::uuid`, [inv.id])
        const [org] = await tx.sql<{ name: string }>(
          'select name from tenants where id = ?::uuid union all select name from partners where id = ?::uuid',
          [p.orgId, p.orgId],
        )
        return { invitation: toView(row!), token: inv.token, orgName: org?.name ?? 'the Trellis platform' }
      })
      const mailer = deps.mailer
      if (!mailer?.configured)
        return reply.code(201).send({ invitation: created.invitation, acceptToken: created.token, emailed: false })
      // Mailed only once committed; the admin never sees the token, so accepting proves the address.
      mailer.send(
        'invitation',
        invitationMail(email, {
          orgName: created.orgName,
          role: created.invitation.role,
          link: mailer.link('/accept-invitation', { token: created.token }),
          expiresAt: new Date(created.invitation.expiresAt),
        }),
      )
      return reply.code(201).send({ invitation: created.invitation, emailed: true })
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
      return deps.orgTx(p.orgId, (tx) =>
        pageAfterCursor(tx, { select: `${LIST_SQL} where`, id: 'i.id' }, request.query, toView),
      )
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
      await deps.orgTx(p.orgId, async (tx) => {
        const [inv] = await tx.sql<{ id: string; email: string; accepted_at: Date | null; revoked_at: Date | null }>(
          'select id, email, accepted_at, revoked_at from invitations where id = ?::uuid for update',
          [request.params.id],
        )
        if (!inv) throw KRN.NOT_FOUND({ what: 'invitation' })
        if (inv.accepted_at)
          throw KRN.CONFLICT({ reason: 'the invitation was accepted already; remove the member instead' })
        if (inv.revoked_at) return
        await auditedWrite(tx, {
          write: { sql: 'update invitations set revoked_at = now() where id = ?::uuid returning id', params: [inv.id] },
          auditOrg: p.orgId,
          audit: {
            ...auditMeta(request),
            action: 'invitation.revoked',
            target: { kind: 'invitation', id: inv.id },
            data: { email: inv.email },
          },
        })
      })
      return reply.code(204).send(null)
    },
  )
}
