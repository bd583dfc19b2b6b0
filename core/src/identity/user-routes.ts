import { Type } from '@sinclair/typebox'
import type { Api } from '../http/types.js'
import type { OrgTx } from '../http/route-deps.js'
import { AUTH, KRN } from '../errors.js'
import { auditedWrite } from '../audit/audited-write.js'
import { auditMeta, principalOf, requirePermission } from '../http/guards.js'
import { PageQuery, pageOf, decodeCursor, toPage } from '../http/pagination.js'
import { KERNEL_PERMISSIONS as P, missingPermissions } from './permissions.js'
import { ROLE_BY_NAME_SQL, type RoleRow, assignableRole } from './roles.js'
import type { Tx } from '../db/database.js'
import { kernelEvent } from '../events/outbox.js'
import { type RevocationNotice, announceRevoked, revokeMemberAccess } from './revocation.js'

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

/**
 * The member and the role named `roleName` (null when there is none), in one round trip: what a
 * role change reads before it writes.
 */
async function memberAndRole(
  tx: Tx,
  orgId: string,
  userId: string,
  roleName: string,
): Promise<{ member: MemberRow; role: RoleRow | null }> {
  const [row] = await tx.sql<{ member: MemberRow | null; role: RoleRow | null }>(
    `select (select to_jsonb(x) from (${MEMBER_SQL} where m.user_id = ?::uuid) x) as member,
            (select to_jsonb(r) from (${ROLE_BY_NAME_SQL}) r) as role`,
    [userId, roleName, orgId],
  )
  if (!row?.member) throw KRN.NOT_FOUND({ what: 'user' })
  return { member: row.member, role: row.role }
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
export function registerUserRoutes(app: Api, deps: { orgTx: OrgTx; revocation: RevocationNotice }): void {
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
      const rows = await deps.orgTx(p.orgId, (tx) =>
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
      return toMember(await deps.orgTx(p.orgId, (tx) => memberOf(tx, request.params.id)))
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
      const member = await deps.orgTx(p.orgId, async (tx) => {
        const read = await memberAndRole(tx, p.orgId, request.params.id, request.body.role)
        const before = read.member
        const target = assignableRole(read.role, p.orgKind, request.body.role)
        const missing = missingPermissions(p.permissions, target.permissions)
        if (missing.length) throw AUTH.PERMISSION_ESCALATION({ permissions: missing })
        const id = request.params.id
        await auditedWrite(tx, {
          write: {
            sql: 'update memberships set role_id = ?::uuid where user_id = ?::uuid returning id',
            params: [target.id, id],
          },
          auditOrg: p.orgId,
          audit: {
            ...auditMeta(request),
            action: 'membership.role_changed',
            target: { kind: 'user', id },
            data: { from: before.role, to: target.name },
          },
          events: [
            kernelEvent('kernel.membership.role_changed', `user/${id}`, {
              userId: id,
              from: before.role,
              to: target.name,
            }),
          ],
        })
        // Access tokens carry the permissions they were issued with: the member signs in again
        // under the new role. API keys need no revoking: each request narrows a key to its creator's role.
        ended = await revokeMemberAccess(tx, p.orgId, id, { apiKeys: false })
        // What the write changed is the role: the member as read before, with the new one.
        return { ...before, role: target.name }
      })
      await announceRevoked(deps.revocation, p.orgId, ended)
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
      const ended = await deps.orgTx(p.orgId, async (tx) => {
        const before = await memberOf(tx, request.params.id)
        const id = request.params.id
        await auditedWrite(tx, {
          write: { sql: 'delete from memberships where user_id = ?::uuid returning id', params: [id] },
          auditOrg: p.orgId,
          audit: {
            ...auditMeta(request),
            action: 'membership.removed',
            target: { kind: 'user', id },
            data: { role: before.role },
          },
          events: [kernelEvent('kernel.membership.removed', `user/${id}`, { userId: id, role: before.role })],
        })
        const families = await revokeMemberAccess(tx, p.orgId, id, { apiKeys: true })
        return families
      })
      await announceRevoked(deps.revocation, p.orgId, ended)
      return reply.code(204).send(null)
    },
  )
}
