import { SignJWT, jwtVerify, errors as joseErrors, decodeProtectedHeader } from 'jose'
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
  ) {}

  async issue(p: { userId: string; orgId: string; orgKind: OrgKind; permissions: string[]; sessionId: string }): Promise<{ token: string; expiresIn: number }> {
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
      const { payload } = await jwtVerify<AccessClaims>(token, key, { issuer: this.issuer, audience: AUDIENCE, algorithms: ['EdDSA'], typ: 'at+jwt', requiredClaims: ['sub', 'exp', 'iat'] })
      if (typeof payload.org !== 'string' || !Array.isArray(payload.perms) || typeof payload.sid !== 'string') throw AUTH.INVALID_TOKEN({ reason: 'missing claims' })
      return {
        principal: { kind: 'user', id: payload.sub!, userId: payload.sub!, orgId: payload.org, orgKind: payload.okd, permissions: new Set(payload.perms), sessionId: payload.sid },
        expiresAt: payload.exp! * 1000,
      }
    } catch (err) {
      if (err instanceof joseErrors.JWTExpired) throw AUTH.TOKEN_EXPIRED()
      if (err instanceof joseErrors.JOSEError) throw AUTH.INVALID_TOKEN({ reason: err.code })
      throw err
    }
  }
}
