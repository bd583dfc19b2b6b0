import type { FastifyRequest } from 'fastify'
import { AUTH } from '../errors.js'
import { principalOf } from '../http/guards.js'
import type { Principal } from '../identity/principal.js'
import { KERNEL_PERMISSIONS as P } from '../identity/permissions.js'

/**
 * The caller of a tenant's governance route (retention, legal holds, erasure): the route's guard
 * already checked `governance.manage`; a platform or partner organisation holding it is refused
 * too, since these act on one tenant's own data.
 */
export function tenantGovernor(request: FastifyRequest): Principal {
  const p = principalOf(request)
  if (p.orgKind !== 'tenant') throw AUTH.FORBIDDEN({ permission: P.governanceManage })
  return p
}
