import type { FastifyRequest } from 'fastify'
import { MKT } from '../errors.js'
import { AUTH, KERNEL_PERMISSIONS as P, PLATFORM_ORG, principalOf, type Principal } from '@trellis/core'

/** The caller as a publisher: a member (or API key) of a partner holding plugins.publish. */
export function publisherOf(request: FastifyRequest): Principal {
  return assertPublisher(principalOf(request))
}

export function assertPublisher(p: Principal): Principal {
  if (!p.permissions.has(P.pluginsPublish)) throw AUTH.FORBIDDEN({ permission: P.pluginsPublish })
  if (p.orgKind !== 'partner') throw MKT.NOT_A_PUBLISHER()
  return p
}

/** Platform admins (and reviewers) see every publisher's versions and checks. */
export function isPlatformStaff(p: Principal): boolean {
  return (
    p.orgKind === 'platform' &&
    p.orgId === PLATFORM_ORG &&
    (p.permissions.has(P.platformAdmin) || p.permissions.has(P.marketplaceReview))
  )
}

export const SOURCE = 'trellis/marketplace'
