import { Type } from '@sinclair/typebox'
import type { Api } from '../http/types.js'
import type { Database } from '../db/database.js'
import { AUTH } from '../errors.js'
import { principalOf, requirePermission } from '../http/guards.js'
import { UserSchema } from './entities.js'
import type { Principal } from './principal.js'
import { PartnerSchema, TenantSchema } from '../tenancy/entities.js'
import { Uuid } from './auth-tokens.js'

/** Who the caller is: the credential as verified (no database read), and with its names (/me). */
export function registerSessionRoutes(app: Api, deps: { db: Pick<Database, 'withEntityManager'> }): void {
  app.get(
    '/auth/session',
    {
      preHandler: requirePermission(),
      schema: {
        tags: ['auth'],
        summary: 'The current credential as the kernel sees it, without a database read',
        response: {
          200: Type.Object({
            kind: Type.String(),
            id: Uuid,
            userId: Uuid,
            org: Type.Object({ id: Uuid, kind: Type.String() }),
            permissions: Type.Array(Type.String()),
          }),
        },
      },
    },
    // Synchronous: nothing here waits, so no promise is made for it.
    (request) => {
      const p = principalOf(request)
      return {
        kind: p.kind,
        id: p.id,
        userId: p.userId,
        org: { id: p.orgId, kind: p.orgKind },
        permissions: sortedPermissions(p),
      }
    },
  )

  app.get(
    '/me',
    {
      preHandler: requirePermission(),
      schema: {
        tags: ['auth'],
        summary: 'Who am I: the caller, its organisation and permissions',
        response: {
          200: Type.Object({
            kind: Type.String(),
            id: Uuid,
            user: Type.Object({ id: Uuid, email: Type.String(), name: Type.String() }),
            org: Type.Object({ id: Uuid, kind: Type.String(), name: Type.String() }),
            permissions: Type.Array(Type.String()),
          }),
        },
      },
    },
    async (request) => {
      const p = principalOf(request)
      const row = await deps.db.withEntityManager(p.orgId, async (em) => {
        const user = await em.findOne(UserSchema, { id: p.userId })
        const org =
          p.orgKind === 'tenant'
            ? await em.findOne(TenantSchema, { id: p.orgId })
            : p.orgKind === 'partner'
              ? await em.findOne(PartnerSchema, { id: p.orgId })
              : null
        return { user, orgName: org?.name ?? 'Platform' }
      })
      if (!row.user) throw AUTH.INVALID_TOKEN({ reason: 'the user no longer exists' })
      return {
        kind: p.kind,
        id: p.id,
        user: { id: row.user.id, email: row.user.email, name: row.user.name },
        org: { id: p.orgId, kind: p.orgKind, name: row.orgName },
        permissions: [...p.permissions].sort(),
      }
    },
  )
}

// A verified token's principal is reused until it expires: sort its permissions once.
const sorted = new WeakMap<Principal, string[]>()
function sortedPermissions(p: Principal): string[] {
  let list = sorted.get(p)
  if (!list) sorted.set(p, (list = [...p.permissions].sort()))
  return list
}
