import { Type } from '@sinclair/typebox'
import { v7 as uuidv7 } from 'uuid'
import type { Api } from '../http/types.js'
import { orgTx, type KernelContext } from '../kernel-context.js'
import { AUTH, KRN } from '../errors.js'
import { appendAudit } from '../audit/audit-log.js'
import { auditMeta, principalOf, requirePermission } from '../http/guards.js'
import { PageQuery, pageOf, decodeCursor, toPage } from '../http/pagination.js'
import { KERNEL_PERMISSIONS as P, missingPermissions } from './permissions.js'
import { stillMissing } from '../plugins/grantable.js'
import { assertPasswordStrength, hashPassword } from './passwords.js'
import { findAssignableRole } from './roles.js'
import type { Tx } from '../db/database.js'
import { emitEvents, kernelEvent } from '../events/outbox.js'

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
  return { id: r.id, email: r.email, name: r.name, role: r.role, status: r.status, joinedAt: new Date(r.joinedAt).toISOString() }
}

async function memberOf(tx: Tx, userId: string): Promise<MemberRow> {
  const [row] = await tx.sql<MemberRow>(`${MEMBER_SQL} where m.user_id = ?::uuid`, [userId])
  if (!row) throw KRN.NOT_FOUND({ what: 'user' })
  return row
}

/** Users of the caller's organisation: its members, with one role each. */
export function registerUserRoutes(app: Api, k: KernelContext): void {
  app.get(
    '/users',
    { preHandler: requirePermission(P.usersRead), schema: { tags: ['identity'], summary: 'List the members of your organisation', querystring: Type.Object(PageQuery, { additionalProperties: false }), response: { 200: pageOf(Member) } } },
    async (request) => {
      const p = principalOf(request)
      const after = decodeCursor(request.query.cursor)
      const limit = request.query.limit ?? 50
      const rows = await orgTx(k, p.orgId, (tx) =>
        tx.sql<MemberRow>(`${MEMBER_SQL} where (?::uuid is null or m.id > ?::uuid) order by m.id limit ?`, [after, after, limit + 1]),
      )
      const page = toPage(rows.map((r) => ({ ...r, id: r.membership_id, user: r })), limit)
      return { items: page.items.map((r) => toMember(r.user)), nextCursor: page.nextCursor }
    },
  )

  app.get(
    '/users/:id',
    { preHandler: requirePermission(P.usersRead), schema: { tags: ['identity'], summary: 'One member of your organisation', params: IdParams, response: { 200: Member } } },
    async (request) => {
      const p = principalOf(request)
      return toMember(await orgTx(k, p.orgId, (tx) => memberOf(tx, request.params.id)))
    },
  )

  app.post(
    '/users',
    {
      preHandler: requirePermission(P.usersManage),
      schema: {
        tags: ['identity'],
        summary: 'Add a member: creates the user, or adds an existing user by email',
        body: Type.Object(
          {
            email: Type.String({ format: 'email', maxLength: 320 }),
            name: Type.String({ minLength: 1, maxLength: 200 }),
            password: Type.Optional(Type.String({ maxLength: 1024, description: 'Required when the user does not exist yet.' })),
            role: Type.String({ minLength: 1, maxLength: 100 }),
          },
          { additionalProperties: false },
        ),
        response: { 201: Member },
      },
    },
    async (request, reply) => {
      const p = principalOf(request)
      const { email, name, password, role } = request.body
      if (password !== undefined) assertPasswordStrength(password)
      const passwordHash = password !== undefined ? await hashPassword(password) : undefined
      const member = await orgTx(k, p.orgId, async (tx) => {
        const target = await findAssignableRole(tx, p.orgId, p.orgKind, role)
        let missing = missingPermissions(p.permissions, target.permissions)
        if (missing.length) missing = await stillMissing(k, p, missing, tx)
        if (missing.length) throw AUTH.PERMISSION_ESCALATION({ permissions: missing })
        let [user] = await tx.sql<{ id: string }>('select id from users where lower(email) = lower(?)', [email])
        if (!user) {
          if (!passwordHash) throw KRN.VALIDATION_FAILED({ reason: 'body/password is required for a new user' })
          user = { id: uuidv7() }
          await tx.sql('insert into users (id, email, name, password_hash) values (?::uuid, ?, ?, ?)', [user.id, email, name, passwordHash])
        }
        const inserted = await tx.sql(
          'insert into memberships (id, tenant_id, org_kind, user_id, role_id) values (?::uuid, ?::uuid, ?, ?::uuid, ?::uuid) on conflict (tenant_id, user_id) do nothing returning id',
          [uuidv7(), p.orgId, p.orgKind, user.id, target.id],
        )
        if (inserted.length === 0) throw KRN.CONFLICT({ reason: 'that user is already a member' })
        await appendAudit(tx, p.orgId, { ...auditMeta(request), action: 'membership.created', target: { kind: 'user', id: user.id }, data: { email, role } })
        await emitEvents(tx, kernelEvent('kernel.membership.created', `user/${user.id}`, { userId: user.id, email, role: target.name }))
        return memberOf(tx, user.id)
      })
      return reply.code(201).send(toMember(member))
    },
  )

  app.put(
    '/users/:id/role',
    {
      preHandler: requirePermission(P.usersManage),
      schema: {
        tags: ['identity'],
        summary: 'Change a member\'s role',
        params: IdParams,
        body: Type.Object({ role: Type.String({ minLength: 1, maxLength: 100 }) }, { additionalProperties: false }),
        response: { 200: Member },
      },
    },
    async (request) => {
      const p = principalOf(request)
      const member = await orgTx(k, p.orgId, async (tx) => {
        const before = await memberOf(tx, request.params.id)
        const target = await findAssignableRole(tx, p.orgId, p.orgKind, request.body.role)
        const missing = missingPermissions(p.permissions, target.permissions)
        if (missing.length) throw AUTH.PERMISSION_ESCALATION({ permissions: missing })
        await tx.sql('update memberships set role_id = ?::uuid where user_id = ?::uuid', [target.id, request.params.id])
        await appendAudit(tx, p.orgId, { ...auditMeta(request), action: 'membership.role_changed', target: { kind: 'user', id: request.params.id }, data: { from: before.role, to: target.name } })
        await emitEvents(tx, kernelEvent('kernel.membership.role_changed', `user/${request.params.id}`, { userId: request.params.id, from: before.role, to: target.name }))
        return memberOf(tx, request.params.id)
      })
      return toMember(member)
    },
  )

  app.delete(
    '/users/:id',
    { preHandler: requirePermission(P.usersManage), schema: { tags: ['identity'], summary: 'Remove a member from your organisation', params: IdParams, response: { 204: Type.Null() } } },
    async (request, reply) => {
      const p = principalOf(request)
      if (request.params.id === p.userId) throw KRN.CONFLICT({ reason: 'you cannot remove yourself' })
      await orgTx(k, p.orgId, async (tx) => {
        const before = await memberOf(tx, request.params.id)
        await tx.sql('delete from memberships where user_id = ?::uuid', [request.params.id])
        await appendAudit(tx, p.orgId, { ...auditMeta(request), action: 'membership.removed', target: { kind: 'user', id: request.params.id }, data: { role: before.role } })
        await emitEvents(tx, kernelEvent('kernel.membership.removed', `user/${request.params.id}`, { userId: request.params.id, role: before.role }))
      })
      return reply.code(204).send(null)
    },
  )
}
