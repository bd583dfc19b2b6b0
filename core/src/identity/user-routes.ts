import { Type } from '@sinclair/typebox'
import type { Api } from '../http/types.js'
import { orgTx, type KernelContext } from '../kernel-context.js'
import { AUTH, KRN } from '../errors.js'
import { appendAudit } from '../audit/audit-log.js'
import { auditMeta, principalOf, requirePermission } from '../http/guards.js'
import { PageQuery, pageOf, decodeCursor, toPage } from '../http/pagination.js'
import { KERNEL_PERMISSIONS as P, missingPermissions } from './permissions.js'
import { findAssignableRole } from './roles.js'
import type { Tx } from '../db/database.js'
import { emitEvents, kernelEvent } from '../events/outbox.js'
import { announceRevoked, revokeMemberAccess } from './revocation.js'
import { registerInvitationRoutes } from './invitation-routes.js'

const Member = Type.Object({
  id: Type.String({ format: 'uuid', description: 'The user id.' }),
  email: Type.String(),
  name: Type.String(),
  role: Type.String(),
  status: Type.String(),
  joinedAt: Type.String({ format: 'date-time' }),
})
const IdParams = Type.Object({ id: Type.String({ format: 'uuid' }) })

const MEMBER_SQL = `select u.id, u.email, u.name, r.name as role, u.status, m.created_at as "joinedAt", m.id as membership_id
  from memberships m join users u on u.id = m.user_id join roles r on r.id = m.role_id`

interface MemberRow {
  id: string
  email: string
  name: string
  role: string
  status: string
  joinedAt: Date
  membership_id: string
}

function toMember(r: MemberRow) {
  return {
    id: r.id,
    email: r.email,
    name: r.name,
    role: r.role,
    status: r.status,
    joinedAt: new Date(r.joinedAt).toISOString(),
  }
}

async function memberOf(tx: Tx, userId: string): Promise<MemberRow> {
  const [row] = await tx.sql<MemberRow>(`${MEMBER_SQL} where m.user_id = ?::uuid`, [userId])
  if (!row) throw KRN.NOT_FOUND({ what: 'user' })
  return row
}

/**
 * Users of the caller's organisation: its members, with one role each. People join through
 * invitations (invitation-routes.ts), never by an admin naming an existing account.
 */
export function registerUserRoutes(app: Api, k: KernelContext): void {
  registerInvitationRoutes(app, k)
  app.get(
    '/users',
    {
      preHandler: requirePermission(P.usersRead),
      schema: {
        tags: ['identity'],
        summary: 'List the members of your organisation',
        querystring: Type.Object(PageQuery, { additionalProperties: false }),
        response: { 200: pageOf(Member) },
      },
    },
    async (request) => {
      const p = principalOf(request)
      const after = decodeCursor(request.query.cursor)
      const limit = request.query.limit ?? 50
      const rows = await orgTx(k, p.orgId, (tx) =>
        tx.sql<MemberRow>(`${MEMBER_SQL} where (?::uuid is null or m.id > ?::uuid) order by m.id limit ?`, [
          after,
          after,
          limit + 1,
        ]),
      )
      const page = toPage(
        rows.map((r) => ({ ...r, id: r.membership_id, user: r })),
        limit,
      )
      return { items: page.items.map((r) => toMember(r.user)), nextCursor: page.nextCursor }
    },
  )

  app.get(
    '/users/:id',
    {
      preHandler: requirePermission(P.usersRead),
      schema: {
        tags: ['identity'],
        summary: 'One member of your organisation',
        params: IdParams,
        response: { 200: Member },
      },
    },
    async (request) => {
      const p = principalOf(request)
      return toMember(await orgTx(k, p.orgId, (tx) => memberOf(tx, request.params.id)))
    },
  )

  app.put(
    '/users/:id/role',
    {
      preHandler: requirePermission(P.usersManage),
      schema: {
        tags: ['identity'],
        summary: "Change a member's role",
        params: IdParams,
        body: Type.Object({ role: Type.String({ minLength: 1, maxLength: 100 }) }, { additionalProperties: false }),
        response: { 200: Member },
      },
    },
    async (request) => {
      const p = principalOf(request)
      let ended: string[] = []
      const member = await orgTx(k, p.orgId, async (tx) => {
        const before = await memberOf(tx, request.params.id)
        const target = await findAssignableRole(tx, p.orgId, p.orgKind, request.body.role)
        const missing = missingPermissions(p.permissions, target.permissions)
        if (missing.length) throw AUTH.PERMISSION_ESCALATION({ permissions: missing })
        await tx.sql('update memberships set role_id = ?::uuid where user_id = ?::uuid', [target.id, request.params.id])
        // Access tokens carry the permissions they were issued with: the member signs in again
        // under the new role. API keys need no revoking: each request narrows a key to its creator's role.
        ended = await revokeMemberAccess(tx, p.orgId, request.params.id, { apiKeys: false })
        await appendAudit(tx, p.orgId, {
          ...auditMeta(request),
          action: 'membership.role_changed',
          target: { kind: 'user', id: request.params.id },
          data: { from: before.role, to: target.name },
        })
        await emitEvents(
          tx,
          kernelEvent('kernel.membership.role_changed', `user/${request.params.id}`, {
            userId: request.params.id,
            from: before.role,
            to: target.name,
          }),
        )
        return memberOf(tx, request.params.id)
      })
      announceRevoked(k, p.orgId, ended)
      return toMember(member)
    },
  )

  app.delete(
    '/users/:id',
    {
      preHandler: requirePermission(P.usersManage),
      schema: {
        tags: ['identity'],
        summary: 'Remove a member from your organisation',
        params: IdParams,
        response: { 204: Type.Null() },
      },
    },
    async (request, reply) => {
      const p = principalOf(request)
      if (request.params.id === p.userId) throw KRN.CONFLICT({ reason: 'you cannot remove yourself' })
      const ended = await orgTx(k, p.orgId, async (tx) => {
        const before = await memberOf(tx, request.params.id)
        await tx.sql('delete from memberships where user_id = ?::uuid', [request.params.id])
        const families = await revokeMemberAccess(tx, p.orgId, request.params.id, { apiKeys: true })
        await appendAudit(tx, p.orgId, {
          ...auditMeta(request),
          action: 'membership.removed',
          target: { kind: 'user', id: request.params.id },
          data: { role: before.role },
        })
        await emitEvents(
          tx,
          kernelEvent('kernel.membership.removed', `user/${request.params.id}`, {
            userId: request.params.id,
            role: before.role,
          }),
        )
        return families
      })
      announceRevoked(k, p.orgId, ended)
      return reply.code(204).send(null)
    },
  )
}
