import { Type } from '@sinclair/typebox'
import { v7 as uuidv7 } from 'uuid'
import type { Api } from '../http/types.js'
import type { OrgTx } from '../http/route-deps.js'
import type { Principal } from './principal.js'
import { AUTH, KRN } from '../errors.js'
import { auditedWrite } from '../audit/audited-write.js'
import { auditOf, principalOf, requirePermission } from '../http/guards.js'
import { KERNEL_PERMISSIONS as P, PERMISSION_PATTERN, missingPermissions } from './permissions.js'
import { BUILTIN_ROLES } from './permissions.js'
import type { RoleRow } from './roles.js'
import { sqlArray } from '../db/database.js'
import { kernelEvent } from '../events/outbox.js'

const Role = Type.Object({
  id: Type.String({ format: 'uuid' }),
  name: Type.String(),
  description: Type.String(),
  permissions: Type.Array(Type.String()),
  builtin: Type.Boolean(),
})

function toRole(r: RoleRow) {
  return { id: r.id, name: r.name, description: r.description, permissions: r.permissions, builtin: r.builtin }
}

export interface RoleRouteDeps {
  orgTx: OrgTx
  /** Of the permissions a caller lacks, those it still may not grant (see plugins/grantable.ts). */
  stillMissing(p: Principal, missing: string[]): Promise<string[]>
}

/** Roles: the built-in ones for the organisation's kind, and custom ones it defines. */
export function registerRoleRoutes(app: Api, deps: RoleRouteDeps): void {
  app.get(
    '/roles',
    {
      preHandler: requirePermission(P.usersRead),
      schema: {
        tags: ['identity'],
        summary: 'Roles you can assign in your organisation',
        response: { 200: Type.Object({ items: Type.Array(Role) }) },
      },
    },
    async (request) => {
      const p = principalOf(request)
      const rows = await deps.orgTx(p.orgId, (tx) => tx.sql<RoleRow>('select * from roles order by builtin desc, name'))
      const usable = rows.filter(
        (r) => !r.builtin || BUILTIN_ROLES[r.name as keyof typeof BUILTIN_ROLES]?.orgKinds.includes(p.orgKind),
      )
      return { items: usable.map(toRole) }
    },
  )

  app.post(
    '/roles',
    {
      preHandler: requirePermission(P.rolesManage),
      schema: {
        tags: ['identity'],
        summary: 'Define a custom role from permissions you hold',
        body: Type.Object(
          {
            name: Type.String({ pattern: '^[a-z][a-z0-9_-]{1,62}$' }),
            description: Type.Optional(Type.String({ maxLength: 500 })),
            permissions: Type.Array(Type.String({ pattern: PERMISSION_PATTERN, maxLength: 200 }), {
              maxItems: 500,
              uniqueItems: true,
            }),
          },
          { additionalProperties: false },
        ),
        response: { 201: Role },
      },
    },
    async (request, reply) => {
      const p = principalOf(request)
      const { name, description = '', permissions } = request.body
      let missing = missingPermissions(p.permissions, permissions)
      // Permissions the tenant's plugins contribute are grantable by those who may install plugins.
      if (missing.length) missing = await deps.stillMissing(p, missing)
      if (missing.length) throw AUTH.PERMISSION_ESCALATION({ permissions: missing })
      if (name in BUILTIN_ROLES) throw KRN.CONFLICT({ reason: `${name} is a built-in role` })
      const id = uuidv7()
      const [row] = await deps.orgTx(p.orgId, (tx) =>
        auditedWrite<RoleRow>(tx, {
          write: {
            sql: `insert into roles (id, tenant_id, name, description, permissions) values (?::uuid, ?::uuid, ?, ?, ?::text[])
                  on conflict do nothing returning *`,
            params: [id, p.orgId, name, description, sqlArray(permissions)],
          },
          auditOrg: p.orgId,
          audit: auditOf(request, 'role.created', { kind: 'role', id }, { name, permissions }),
          events: [kernelEvent('kernel.role.created', `role/${id}`, { roleId: id, name, permissions })],
          last: true,
        }),
      )
      if (!row) throw KRN.CONFLICT({ reason: `a role named ${name} exists` })
      return reply.code(201).send(toRole(row))
    },
  )

  app.delete(
    '/roles/:id',
    {
      preHandler: requirePermission(P.rolesManage),
      schema: {
        tags: ['identity'],
        summary: 'Delete a custom role nobody holds',
        params: Type.Object({ id: Type.String({ format: 'uuid' }) }),
        response: { 204: Type.Null() },
      },
    },
    async (request, reply) => {
      const p = principalOf(request)
      await deps.orgTx(p.orgId, async (tx) => {
        const [role] = await tx.sql<RoleRow>('select * from roles where id = ?::uuid and tenant_id = ?::uuid', [
          request.params.id,
          p.orgId,
        ])
        if (!role) throw KRN.NOT_FOUND({ what: 'role' })
        const [used] = await tx.sql('select 1 from memberships where role_id = ?::uuid limit 1', [role.id])
        if (used) throw KRN.CONFLICT({ reason: 'members still hold this role' })
        await auditedWrite(tx, {
          write: { sql: 'delete from roles where id = ?::uuid returning id', params: [role.id] },
          auditOrg: p.orgId,
          audit: auditOf(request, 'role.deleted', { kind: 'role', id: role.id }, { name: role.name }),
          events: [kernelEvent('kernel.role.deleted', `role/${role.id}`, { roleId: role.id, name: role.name })],
          last: true,
        })
      })
      return reply.code(204).send(null)
    },
  )
}
