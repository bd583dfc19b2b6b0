import { timingSafeEqual } from 'node:crypto'
import type { KernelContext } from '../kernel-context.js'
import { AUTH } from '../errors.js'
import type { Principal } from './principal.js'
import { hashToken } from './sessions.js'
import { membershipsOf } from './memberships.js'
import { signInTx } from './signin.js'
import { noteApiKeyUse } from './api-key-last-use.js'
import type { OrgKind } from './entities.js'

/** What checking a credential needs: token verification, the organisation status cache, sign-outs, the database (API keys). */
export type AuthenticateDeps = Pick<KernelContext, 'tokens' | 'orgStatus' | 'revokedSessions' | 'db'>

const API_KEY = /^trk_([0-9a-f]{32})_([A-Za-z0-9_-]{43})$/

export function formatApiKey(id: string, secret: string): string {
  return `trk_${id.replace(/-/g, '')}_${secret}`
}

/** Resolves a bearer credential — an access token or an API key — to the caller it stands for. */
export async function authenticate(k: AuthenticateDeps, bearer: string): Promise<Principal> {
  if (bearer.startsWith('trk_')) return authenticateApiKey(k, bearer)
  const principal = await k.tokens.verify(bearer)
  assertNotSignedOut(k, principal)
  if (principal.sessionId && k.revokedSessions.shared && (await k.revokedSessions.isRevoked(principal.sessionId)))
    throw AUTH.INVALID_TOKEN({ reason: 'signed out' })
  await k.orgStatus.assertActive(principal.orgId, principal.sessionId)
  return principal
}

/**
 * The same answer without waiting, when everything it rests on is already known (an access
 * token verified before, its organisation's status fresh); undefined when `authenticate` must
 * run. Throws as `authenticate` would.
 */
export function authenticateKnown(k: AuthenticateDeps, bearer: string): Principal | undefined {
  const principal = k.tokens.known(bearer)
  if (!principal) return undefined
  assertNotSignedOut(k, principal)
  // With Redis a sign-out in another process must be asked about: that waits.
  if (principal.sessionId && k.revokedSessions.shared) return undefined
  return k.orgStatus.checkKnown(principal.orgId, principal.sessionId) ? principal : undefined
}

function assertNotSignedOut(k: AuthenticateDeps, principal: Principal): void {
  if (principal.sessionId && k.revokedSessions.has(principal.sessionId))
    throw AUTH.INVALID_TOKEN({ reason: 'signed out' })
}

/** The credential in an `Authorization: Bearer <credential>` header (scheme case-insensitive), or undefined when malformed. */
export function bearerCredential(header: string): string | undefined {
  if (header.length < 8 || header.slice(0, 6).toLowerCase() !== 'bearer' || !/\s/.test(header[6]!)) return undefined
  const credential = header.slice(7).trim()
  return credential && credential.indexOf(' ') < 0 && credential.indexOf('\t') < 0 ? credential : undefined
}

async function authenticateApiKey(k: AuthenticateDeps, presented: string): Promise<Principal> {
  const m = API_KEY.exec(presented)
  if (!m) throw AUTH.INVALID_API_KEY()
  const hex = m[1]!
  const id = `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`
  const found = await signInTx(k.db, async (tx) => {
    const [key] = await tx.sql<{
      id: string
      tenant_id: string
      org_kind: OrgKind
      secret_hash: string
      permissions: string[]
      created_by: string
      expires_at: Date | null
      revoked_at: Date | null
    }>('select * from trellis_auth_api_key(?::uuid)', [id])
    if (!key) return undefined
    // A key never does more than its creator still may: a demoted creator narrows the key.
    const creator = (await membershipsOf(tx, key.created_by)).find((g) => g.orgId === key.tenant_id)
    return { key, creatorPermissions: new Set(creator?.permissions ?? []) }
  })
  const expected = Buffer.from(found?.key.secret_hash ?? '0'.repeat(64), 'hex')
  const actual = Buffer.from(hashToken(m[2]!), 'hex')
  if (!found || !timingSafeEqual(expected, actual)) throw AUTH.INVALID_API_KEY()
  const { key, creatorPermissions } = found
  if (key.revoked_at || (key.expires_at && new Date(key.expires_at).getTime() <= Date.now()))
    throw AUTH.INVALID_API_KEY()
  await k.orgStatus.assertActive(key.tenant_id)
  noteApiKeyUse(k.db, key.id)
  return {
    kind: 'api_key',
    id: key.id,
    userId: key.created_by,
    orgId: key.tenant_id,
    orgKind: key.org_kind,
    permissions: new Set(key.permissions.filter((p) => creatorPermissions.has(p))),
  }
}
