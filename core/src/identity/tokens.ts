import { SignJWT, jwtVerify, errors as joseErrors, decodeProtectedHeader, type JWTPayload } from 'jose'
import { AUTH } from '../errors.js'
import type { SigningKeys } from './signing-keys.js'
import type { Principal } from './principal.js'
import type { OrgKind } from './entities.js'

export const ACCESS_TOKEN_TTL_SECONDS = 15 * 60
export const AUDIENCE = 'trellis-api'

interface AccessClaims {
  org: string
  okd: OrgKind
  perms: string[]
  sid: string
}

const cacheKey = (token: string) => token.slice(-32)

/** Short-lived EdDSA access tokens: issuer, audience, expiry and algorithm are all checked. */
export class AccessTokens {
  // Verifying an Ed25519 signature costs far more than the rest of a cheap request; a token
  // that verified once is the same bytes next time, so its outcome is remembered until it expires.
  // Keyed by the signature's tail (hashing the whole token on every request costs more than the
  // rest of the lookup), and an entry counts only for exactly the token it was made for.
  private verified = new Map<string, { token: string; principal: Principal; expiresAt: number }>()
  private static readonly CACHE_SIZE = 10_000

  constructor(
    private readonly keys: SigningKeys,
    private readonly issuer: string,
    /** A token whose `exp - iat` is longer than this is refused, however validly signed. */
    private readonly maxLifetimeSeconds = ACCESS_TOKEN_TTL_SECONDS,
  ) {}

  async issue(p: {
    userId: string
    orgId: string
    orgKind: OrgKind
    permissions: string[]
    sessionId: string
  }): Promise<{ token: string; expiresIn: number }> {
    const key = this.keys.current()
    if (!key?.privateKey) throw new Error('no signing key loaded')
    const claims: AccessClaims = { org: p.orgId, okd: p.orgKind, perms: p.permissions, sid: p.sessionId }
    const token = await new SignJWT({ ...claims })
      .setProtectedHeader({ alg: 'EdDSA', kid: key.kid, typ: 'at+jwt' })
      .setIssuer(this.issuer)
      .setAudience(AUDIENCE)
      .setSubject(p.userId)
      .setIssuedAt()
      .setExpirationTime(`${ACCESS_TOKEN_TTL_SECONDS}s`)
      .sign(key.privateKey)
    return { token, expiresIn: ACCESS_TOKEN_TTL_SECONDS }
  }

  /** The caller behind a token already verified, without waiting; undefined when it must be verified first. */
  known(token: string): Principal | undefined {
    const cached = this.verified.get(cacheKey(token))
    if (!cached || cached.token !== token) return undefined
    if (cached.expiresAt > Date.now()) return cached.principal
    this.verified.delete(cacheKey(token))
    throw AUTH.TOKEN_EXPIRED()
  }

  async verify(token: string): Promise<Principal> {
    const known = this.known(token)
    if (known) return known
    const principal = await this.verifySignature(token)
    if (this.verified.size >= AccessTokens.CACHE_SIZE) this.verified.delete(this.verified.keys().next().value!)
    this.verified.set(cacheKey(token), { token, principal: principal.principal, expiresAt: principal.expiresAt })
    return principal.principal
  }

  private async verifySignature(token: string): Promise<{ principal: Principal; expiresAt: number }> {
    let kid: string | undefined
    try {
      kid = decodeProtectedHeader(token).kid
    } catch {
      throw AUTH.INVALID_TOKEN({ reason: 'not a JWT' })
    }
    const key = kid ? await this.keys.verificationKey(kid) : undefined
    if (!key) throw AUTH.INVALID_TOKEN({ reason: 'unknown signing key' })
    try {
      const { payload } = await jwtVerify<AccessClaims>(token, key, {
        issuer: this.issuer,
        audience: AUDIENCE,
        algorithms: ['EdDSA'],
        typ: 'at+jwt',
        requiredClaims: ['sub', 'exp', 'iat'],
      })
      const claims = checkClaims(payload, this.maxLifetimeSeconds)
      return {
        principal: {
          kind: 'user',
          id: claims.sub,
          userId: claims.sub,
          orgId: claims.org,
          orgKind: claims.okd,
          permissions: new Set(claims.perms),
          sessionId: claims.sid,
        },
        expiresAt: claims.exp * 1000,
      }
    } catch (err) {
      if (err instanceof joseErrors.JWTExpired) throw AUTH.TOKEN_EXPIRED()
      if (err instanceof joseErrors.JOSEError) throw AUTH.INVALID_TOKEN({ reason: err.code })
      throw err
    }
  }
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i
const ORG_KINDS: ReadonlySet<unknown> = new Set<OrgKind>(['platform', 'partner', 'tenant'])
// Clocks of the processes sharing a signing key may differ by this much.
const CLOCK_SKEW_SECONDS = 60

/**
 * Every claim the kernel acts on has the type it expects, and the token lives no longer than
 * the kernel ever issues one for: a token signed with a leaked or misused key cannot grant
 * itself a long life or smuggle a non-string identity into the request.
 */
function checkClaims(
  payload: JWTPayload & Partial<AccessClaims>,
  maxLifetimeSeconds: number,
): AccessClaims & { sub: string; exp: number; iat: number } {
  const { sub, exp, iat, org, okd, perms, sid } = payload
  if (typeof exp !== 'number' || typeof iat !== 'number' || !Number.isFinite(exp) || !Number.isFinite(iat))
    throw AUTH.INVALID_TOKEN({ reason: 'exp and iat must be numbers' })
  if (exp - iat > maxLifetimeSeconds) throw AUTH.INVALID_TOKEN({ reason: `lifetime over ${maxLifetimeSeconds}s` })
  if (iat > Date.now() / 1000 + CLOCK_SKEW_SECONDS) throw AUTH.INVALID_TOKEN({ reason: 'issued in the future' })
  if (typeof sub !== 'string' || !UUID.test(sub)) throw AUTH.INVALID_TOKEN({ reason: 'sub must be a user id' })
  if (typeof org !== 'string' || !UUID.test(org)) throw AUTH.INVALID_TOKEN({ reason: 'org must be an organisation id' })
  if (!ORG_KINDS.has(okd)) throw AUTH.INVALID_TOKEN({ reason: 'okd must be an organisation kind' })
  if (!Array.isArray(perms) || perms.length > 10_000 || !perms.every((p) => typeof p === 'string'))
    throw AUTH.INVALID_TOKEN({ reason: 'perms must be a list of permission names' })
  if (typeof sid !== 'string' || !UUID.test(sid)) throw AUTH.INVALID_TOKEN({ reason: 'sid must be a session id' })
  return { sub, exp, iat, org, okd: okd as OrgKind, perms, sid }
}
