import type { FastifyReply, FastifyRequest } from 'fastify'
import { AUTH } from '../errors.js'
import type { Principal } from '../identity/principal.js'
import type { AuditRecord } from '../audit/audit-log.js'

declare module 'fastify' {
  interface FastifyRequest {
    principal?: Principal
  }
}

/** The caller, or 401. */
export function principalOf(request: FastifyRequest): Principal {
  if (!request.principal) throw AUTH.UNAUTHENTICATED()
  return request.principal
}

/** A preHandler that lets through only callers holding `permission` (any authenticated caller when omitted). */
export function requirePermission(permission?: string) {
  // Callback style: a check that never waits costs no promise.
  return (request: FastifyRequest, _reply: FastifyReply, done: (err?: Error) => void): void => {
    const p = request.principal
    if (!p) return done(AUTH.UNAUTHENTICATED())
    if (permission && !p.permissions.has(permission)) return done(AUTH.FORBIDDEN({ permission }))
    done()
  }
}

/** Who/where for an audit entry made on behalf of this request. */
export function auditMeta(request: FastifyRequest): Pick<AuditRecord, 'actor' | 'ip' | 'requestId'> {
  const p = request.principal
  return { actor: p ? { kind: p.kind, id: p.id } : { kind: 'anonymous', id: request.ip }, ip: request.ip, requestId: String(request.id) }
}
