import { v7 as uuidv7 } from 'uuid'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { Api } from '../../http/types.js'
import type { OrgTx } from '../../http/route-deps.js'
import type { Database, Tx } from '../../db/database.js'
import { KRN } from '../../errors.js'
import { auditedWrite } from '../../audit/audited-write.js'
import { kernelEvent } from '../../events/outbox.js'
import { auditMeta, principalOf, requirePermission } from '../../http/guards.js'
import { toTrellisError } from '../../http/problem.js'
import { KERNEL_PERMISSIONS as P } from '../permissions.js'
import { accountByEmail, signInTx } from '../signin.js'
import { type RevocationNotice, announceRevoked, revokeMemberAccess } from '../revocation.js'
import { orgKindOf, provisionMember } from '../sso/provisioning.js'
import { findAssignableRole } from '../roles.js'
import {
  ERROR_SCHEMA,
  type ScimGroupRow,
  type ScimUserRow,
  groupResource,
  listResponse,
  parseEqFilter,
  scimBoolean,
  userResource,
} from './resources.js'

export interface ScimRouteDeps {
  db: Database
  orgTx: OrgTx
  revocation: RevocationNotice
  publicUrl: string
}

type Body = Record<string, any>
type Req = FastifyRequest<{ Params: { id: string }; Querystring: Record<string, string>; Body: Body }>

const EMAIL = /^[^@\s]+@[^@\s]+\.[^@\s]+$/
const GROUP_SQL = `select g.*, (select array_agg(m.user_id order by m.user_id) from scim_group_members m where m.group_id = g.id) as members from scim_groups g`

/** The role a provisioned person gets: the SSO configuration's default, else the organisation kind's member role. */
async function defaultRole(tx: Tx, orgId: string, kind: string): Promise<string> {
  const [sso] = await tx.sql<{ default_role: string }>(
    'select default_role from sso_providers where tenant_id = ?::uuid',
    [orgId],
  )
  if (sso) return sso.default_role
  if (kind === 'tenant') return 'tenant_member'
  if (kind === 'partner') return 'partner_developer'
  throw KRN.CONFLICT({ reason: 'set a default role with PUT /v1/identity/sso before provisioning platform members' })
}

/**
 * SCIM 2.0 (RFC 7643/7644) provisioning of Users and Groups under /v1/scim/v2, for an API key (or
 * person) holding users.manage in the organisation. Deactivating a user ends their membership,
 * sessions and API keys at once; the SCIM record stays, inactive. Answers are application/scim+json,
 * errors SCIM error messages.
 */
export function registerScimRoutes(app: Api, deps: ScimRouteDeps): void {
  const base = `${deps.publicUrl.replace(/\/+$/, '')}/v1/scim/v2`
  ;(app as unknown as FastifyInstance).register(
    async (instance) => {
      const scim = instance as unknown as Api
      instance.addContentTypeParser('application/scim+json', { parseAs: 'string' }, (_req, body, done) => {
        try {
          done(null, JSON.parse(body as string))
        } catch {
          done(KRN.VALIDATION_FAILED({ reason: 'the body is not JSON' }) as Error, undefined)
        }
      })
      instance.setErrorHandler((err, _request, reply) => {
        const e = toTrellisError(err)
        const scimType =
          e.code === 'KRN_ERR_CONFLICT'
            ? 'uniqueness'
            : e.code === 'KRN_ERR_VALIDATION_FAILED'
              ? 'invalidValue'
              : undefined
        return reply
          .code(e.status)
          .type('application/scim+json')
          .send({
            schemas: [ERROR_SCHEMA],
            status: String(e.status),
            detail: e.message,
            ...(scimType ? { scimType } : {}),
          })
      })
      const guard = { preHandler: requirePermission(P.usersManage), schema: { tags: ['scim'], hide: true } }
      const send = (reply: FastifyReply, status: number, body: unknown) =>
        reply.code(status).type('application/scim+json').send(body)

      async function userRow(tx: Tx, id: string): Promise<ScimUserRow> {
        if (!/^[0-9a-f-]{36}$/i.test(id)) throw KRN.NOT_FOUND({ what: 'user' })
        const [row] = await tx.sql<ScimUserRow>('select * from scim_users where user_id = ?::uuid', [id])
        if (!row) throw KRN.NOT_FOUND({ what: 'user' })
        return row
      }

      /** Ends the membership (and with it sessions and keys) of a deactivated person; returns the session families ended. */
      async function deactivate(tx: Tx, request: FastifyRequest, orgId: string, userId: string): Promise<string[]> {
        const [held] = await tx.sql<{ name: string }>(
          'select r.name from memberships m join roles r on r.id = m.role_id where m.user_id = ?::uuid',
          [userId],
        )
        if (!held) return []
        await auditedWrite(tx, {
          write: { sql: 'delete from memberships where user_id = ?::uuid returning id', params: [userId] },
          auditOrg: orgId,
          audit: {
            ...auditMeta(request),
            action: 'membership.removed',
            target: { kind: 'user', id: userId },
            data: { via: 'scim', role: held.name },
          },
          events: [kernelEvent('kernel.membership.removed', `user/${userId}`, { userId, role: held.name })],
        })
        return revokeMemberAccess(tx, orgId, userId, { apiKeys: true })
      }

      async function activate(
        tx: Tx,
        request: FastifyRequest,
        orgId: string,
        row: { user_id: string; user_name: string; display_name: string | null },
      ) {
        const kind = (await orgKindOf(tx, orgId))!
        await provisionMember(
          tx,
          { id: orgId, kind },
          {
            existing: row.user_id,
            email: row.user_name,
            name: row.display_name ?? row.user_name,
            role: await defaultRole(tx, orgId, kind),
          },
          { ip: request.ip, requestId: String(request.id) },
        )
      }

      /** Applies SCIM attributes (from a PUT body or PATCH operations) to a user; answers the session families ended. */
      async function applyUser(
        tx: Tx,
        request: FastifyRequest,
        orgId: string,
        row: ScimUserRow,
        attrs: Body,
      ): Promise<string[]> {
        const next = { ...row }
        if ('externalId' in attrs) next.external_id = attrs.externalId ?? null
        if ('displayName' in attrs) next.display_name = attrs.displayName ?? null
        if (attrs.name && typeof attrs.name === 'object') {
          if ('givenName' in attrs.name) next.given_name = attrs.name.givenName ?? null
          if ('familyName' in attrs.name) next.family_name = attrs.name.familyName ?? null
        }
        if ('name.givenName' in attrs) next.given_name = attrs['name.givenName'] ?? null
        if ('name.familyName' in attrs) next.family_name = attrs['name.familyName'] ?? null
        let ended: string[] = []
        if ('active' in attrs) {
          next.active = scimBoolean(attrs.active)
          if (row.active && !next.active) ended = await deactivate(tx, request, orgId, row.user_id)
          if (!row.active && next.active) await activate(tx, request, orgId, row)
        }
        await auditedWrite(tx, {
          write: {
            sql: `update scim_users set external_id = ?, display_name = ?, given_name = ?, family_name = ?, active = ?, updated_at = now()
                  where user_id = ?::uuid returning user_id`,
            params: [next.external_id, next.display_name, next.given_name, next.family_name, next.active, row.user_id],
          },
          auditOrg: orgId,
          audit: {
            ...auditMeta(request),
            action: 'scim.user.updated',
            target: { kind: 'user', id: row.user_id },
            data: { active: next.active },
          },
        })
        return ended
      }

      /** PATCH operations as one attribute object (replace/add of simple attributes, as provisioning clients send). */
      function patchAttributes(body: Body): Body {
        const ops = Array.isArray(body.Operations) ? body.Operations : undefined
        if (!ops) throw KRN.VALIDATION_FAILED({ reason: 'a PatchOp needs Operations' })
        const attrs: Body = {}
        for (const op of ops) {
          const kind = String(op.op ?? '').toLowerCase()
          if (kind !== 'replace' && kind !== 'add') throw KRN.VALIDATION_FAILED({ reason: `unsupported op ${op.op}` })
          if (op.path) attrs[op.path] = op.value
          else if (op.value && typeof op.value === 'object') Object.assign(attrs, op.value)
        }
        return attrs
      }

      scim.post('/Users', guard, async (request: Req, reply) => {
        const p = principalOf(request)
        const b = request.body ?? {}
        const email = String(
          (Array.isArray(b.emails) && (b.emails.find((e: Body) => e.primary) ?? b.emails[0])?.value) ||
            b.userName ||
            '',
        )
        if (!EMAIL.test(String(b.userName ?? '')) || !EMAIL.test(email))
          throw KRN.VALIDATION_FAILED({ reason: 'userName must be an e-mail address' })
        const account = await signInTx(deps.db, (tx) => accountByEmail(tx, email))
        const row = await deps.orgTx(p.orgId, async (tx) => {
          const kind = (await orgKindOf(tx, p.orgId))!
          if (account) {
            const [known] = await tx.sql('select 1 from scim_users where user_id = ?::uuid', [account.id])
            if (known) throw KRN.CONFLICT({ reason: 'a user with this userName is provisioned already' })
          }
          const displayName =
            b.displayName ?? ([b.name?.givenName, b.name?.familyName].filter(Boolean).join(' ') || email)
          const member = await provisionMember(
            tx,
            { id: p.orgId, kind },
            { existing: account?.id, email, name: displayName, role: await defaultRole(tx, p.orgId, kind) },
            { ip: request.ip, requestId: String(request.id) },
          )
          const active = b.active === undefined ? true : scimBoolean(b.active)
          const [saved] = await auditedWrite<ScimUserRow>(tx, {
            write: {
              sql: `insert into scim_users (tenant_id, user_id, user_name, display_name, external_id, given_name, family_name, active)
                    values (?::uuid, ?::uuid, ?, ?, ?, ?, ?, true) returning *`,
              params: [
                p.orgId,
                member.userId,
                email,
                displayName,
                b.externalId ?? null,
                b.name?.givenName ?? null,
                b.name?.familyName ?? null,
              ],
            },
            auditOrg: p.orgId,
            audit: {
              ...auditMeta(request),
              action: 'scim.user.created',
              target: { kind: 'user', id: member.userId },
              data: { userName: email },
            },
          })
          if (!active) await applyUser(tx, request, p.orgId, saved!, { active: false })
          return userRow(tx, member.userId)
        })
        return send(reply, 201, userResource(row, base))
      })

      scim.get('/Users', guard, async (request: Req, reply) => {
        const p = principalOf(request)
        const f = parseEqFilter(request.query.filter, ['userName', 'externalId'])
        const rows = await deps.orgTx(p.orgId, (tx) =>
          f
            ? tx.sql<ScimUserRow>(
                `select * from scim_users where ${f.attribute === 'userName' ? 'lower(user_name) = lower(?)' : 'external_id = ?'} order by created_at`,
                [f.value],
              )
            : tx.sql<ScimUserRow>('select * from scim_users order by created_at'),
        )
        const q = request.query
        return send(
          reply,
          200,
          listResponse(
            rows.map((r) => userResource(r, base)),
            Number(q.startIndex ?? 1) || 1,
            q.count ? Number(q.count) : undefined,
          ),
        )
      })

      scim.get('/Users/:id', guard, async (request: Req, reply) => {
        const p = principalOf(request)
        return send(reply, 200, userResource(await deps.orgTx(p.orgId, (tx) => userRow(tx, request.params.id)), base))
      })

      for (const method of ['patch', 'put'] as const)
        scim[method]('/Users/:id', guard, async (request: Req, reply) => {
          const p = principalOf(request)
          const attrs = method === 'patch' ? patchAttributes(request.body ?? {}) : (request.body ?? {})
          let ended: string[] = []
          const row = await deps.orgTx(p.orgId, async (tx) => {
            ended = await applyUser(tx, request, p.orgId, await userRow(tx, request.params.id), attrs)
            return userRow(tx, request.params.id)
          })
          await announceRevoked(deps.revocation, p.orgId, ended)
          return send(reply, 200, userResource(row, base))
        })

      scim.delete('/Users/:id', guard, async (request: Req, reply) => {
        const p = principalOf(request)
        let ended: string[] = []
        await deps.orgTx(p.orgId, async (tx) => {
          const row = await userRow(tx, request.params.id)
          if (row.active) ended = await deactivate(tx, request, p.orgId, row.user_id)
          await auditedWrite(tx, {
            write: { sql: 'delete from scim_users where user_id = ?::uuid returning user_id', params: [row.user_id] },
            auditOrg: p.orgId,
            audit: { ...auditMeta(request), action: 'scim.user.deleted', target: { kind: 'user', id: row.user_id } },
          })
        })
        await announceRevoked(deps.revocation, p.orgId, ended)
        return reply.code(204).send()
      })

      async function groupRow(tx: Tx, id: string): Promise<ScimGroupRow> {
        if (!/^[0-9a-f-]{36}$/i.test(id)) throw KRN.NOT_FOUND({ what: 'group' })
        const [row] = await tx.sql<ScimGroupRow>(`${GROUP_SQL} where g.id = ?::uuid`, [id])
        if (!row) throw KRN.NOT_FOUND({ what: 'group' })
        return row
      }

      /** Adds provisioned users to a group; a group the SSO role map names gives its active members that role. */
      async function addMembers(tx: Tx, orgId: string, group: { id: string; display_name: string }, ids: string[]) {
        const [sso] = await tx.sql<{ role_map: Record<string, string> }>(
          'select role_map from sso_providers where tenant_id = ?::uuid',
          [orgId],
        )
        const roleName = sso?.role_map[group.display_name]
        const kind = (await orgKindOf(tx, orgId))!
        const role = roleName ? await findAssignableRole(tx, orgId, kind, roleName) : undefined
        for (const id of ids) {
          const user = await userRow(tx, id)
          await tx.sql(
            'insert into scim_group_members (tenant_id, group_id, user_id) values (?::uuid, ?::uuid, ?::uuid) on conflict do nothing',
            [orgId, group.id, user.user_id],
          )
          if (role && user.active)
            await tx.sql('update memberships set role_id = ?::uuid where user_id = ?::uuid', [role.id, user.user_id])
        }
      }

      const memberIds = (v: unknown): string[] => (Array.isArray(v) ? v.map((m: Body) => String(m.value)) : [])

      scim.post('/Groups', guard, async (request: Req, reply) => {
        const p = principalOf(request)
        const b = request.body ?? {}
        if (typeof b.displayName !== 'string' || !b.displayName)
          throw KRN.VALIDATION_FAILED({ reason: 'displayName is required' })
        const row = await deps.orgTx(p.orgId, async (tx) => {
          const id = uuidv7()
          try {
            await auditedWrite(tx, {
              write: {
                sql: 'insert into scim_groups (id, tenant_id, display_name, external_id) values (?::uuid, ?::uuid, ?, ?) returning id',
                params: [id, p.orgId, b.displayName, b.externalId ?? null],
              },
              auditOrg: p.orgId,
              audit: {
                ...auditMeta(request),
                action: 'scim.group.created',
                target: { kind: 'group', id },
                data: { displayName: b.displayName },
              },
            })
          } catch (err) {
            if ((err as { code?: string }).code === '23505')
              throw KRN.CONFLICT({ reason: 'a group with this displayName exists' })
            throw err
          }
          await addMembers(tx, p.orgId, { id, display_name: b.displayName }, memberIds(b.members))
          return groupRow(tx, id)
        })
        return send(reply, 201, groupResource(row, base))
      })

      scim.get('/Groups', guard, async (request: Req, reply) => {
        const p = principalOf(request)
        const f = parseEqFilter(request.query.filter, ['displayName', 'externalId'])
        const rows = await deps.orgTx(p.orgId, (tx) =>
          f
            ? tx.sql<ScimGroupRow>(
                `${GROUP_SQL} where ${f.attribute === 'displayName' ? 'lower(g.display_name) = lower(?)' : 'g.external_id = ?'} order by g.created_at`,
                [f.value],
              )
            : tx.sql<ScimGroupRow>(`${GROUP_SQL} order by g.created_at`),
        )
        return send(reply, 200, listResponse(rows.map((r) => groupResource(r, base))))
      })

      scim.get('/Groups/:id', guard, async (request: Req, reply) => {
        const p = principalOf(request)
        return send(reply, 200, groupResource(await deps.orgTx(p.orgId, (tx) => groupRow(tx, request.params.id)), base))
      })

      scim.patch('/Groups/:id', guard, async (request: Req, reply) => {
        const p = principalOf(request)
        const ops = Array.isArray(request.body?.Operations) ? request.body.Operations : undefined
        if (!ops) throw KRN.VALIDATION_FAILED({ reason: 'a PatchOp needs Operations' })
        const row = await deps.orgTx(p.orgId, async (tx) => {
          const group = await groupRow(tx, request.params.id)
          for (const op of ops) {
            const kind = String(op.op ?? '').toLowerCase()
            const path = String(op.path ?? '')
            const removing = /^members\[value eq "([^"]+)"\]$/i.exec(path)
            if (kind === 'add' && path.toLowerCase() === 'members')
              await addMembers(tx, p.orgId, group, memberIds(op.value))
            else if (kind === 'remove' && (removing || path.toLowerCase() === 'members')) {
              const ids = removing ? [removing[1]!] : memberIds(op.value)
              for (const id of ids)
                await tx.sql('delete from scim_group_members where group_id = ?::uuid and user_id::text = ?', [
                  group.id,
                  id,
                ])
            } else if (kind === 'replace' && (path === 'displayName' || (!path && op.value?.displayName)))
              await tx.sql('update scim_groups set display_name = ?, updated_at = now() where id = ?::uuid', [
                path ? op.value : op.value.displayName,
                group.id,
              ])
            else throw KRN.VALIDATION_FAILED({ reason: `unsupported operation ${op.op} ${path}` })
          }
          await auditedWrite(tx, {
            write: {
              sql: 'update scim_groups set updated_at = now() where id = ?::uuid returning id',
              params: [group.id],
            },
            auditOrg: p.orgId,
            audit: { ...auditMeta(request), action: 'scim.group.updated', target: { kind: 'group', id: group.id } },
          })
          return groupRow(tx, group.id)
        })
        return send(reply, 200, groupResource(row, base))
      })

      scim.delete('/Groups/:id', guard, async (request: Req, reply) => {
        const p = principalOf(request)
        await deps.orgTx(p.orgId, async (tx) => {
          const group = await groupRow(tx, request.params.id)
          await auditedWrite(tx, {
            write: { sql: 'delete from scim_groups where id = ?::uuid returning id', params: [group.id] },
            auditOrg: p.orgId,
            audit: { ...auditMeta(request), action: 'scim.group.deleted', target: { kind: 'group', id: group.id } },
          })
        })
        return reply.code(204).send()
      })
    },
    { prefix: '/scim/v2' },
  )
}
