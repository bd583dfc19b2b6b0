import { sqlArray, type Tx } from '../db/database.js'
import type { OrgKind } from './entities.js'
import { BUILTIN_ROLES, type BuiltinRoleName } from './permissions.js'
import { KRN } from '../errors.js'
import { v7 as uuidv7 } from 'uuid'

export interface RoleRow {
  id: string
  tenant_id: string | null
  name: string
  description: string
  permissions: string[]
  builtin: boolean
}

/** Writes the built-in roles' permissions as the code defines them (run at every start). */
export async function syncBuiltinRoles(tx: Tx): Promise<void> {
  for (const [name, role] of Object.entries(BUILTIN_ROLES)) {
    await tx.sql(
      `insert into roles (id, tenant_id, name, description, permissions, builtin) values (?::uuid, null, ?, ?, ?::text[], true)
       on conflict (name) where builtin do update set description = excluded.description, permissions = excluded.permissions`,
      [uuidv7(), name, role.description, sqlArray(role.permissions)],
    )
  }
}

/** The role named `?` (first parameter) in the organisation `?` (second): its own, else a built-in one. */
export const ROLE_BY_NAME_SQL =
  'select * from roles where name = ? and (builtin or tenant_id = ?::uuid) order by builtin limit 1'

/** A role usable in this organisation: a built-in one meant for its kind, or one of its own. */
export async function findAssignableRole(tx: Tx, orgId: string, orgKind: OrgKind, name: string): Promise<RoleRow> {
  const [role] = await tx.sql<RoleRow>(ROLE_BY_NAME_SQL, [name, orgId])
  return assignableRole(role, orgKind, name)
}

/** `role` (as {@link ROLE_BY_NAME_SQL} found it) when usable in an organisation of `orgKind`; otherwise not found. */
export function assignableRole(role: RoleRow | null | undefined, orgKind: OrgKind, name: string): RoleRow {
  if (!role || (role.builtin && !BUILTIN_ROLES[role.name as BuiltinRoleName]?.orgKinds.includes(orgKind)))
    throw KRN.NOT_FOUND({ what: `role ${name}` })
  return role
}
