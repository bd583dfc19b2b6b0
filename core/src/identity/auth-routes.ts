import { Type } from '@sinclair/typebox'
import type { Api } from '../http/types.js'
import { AUTH } from '../errors.js'
import type { Database } from '../db/database.js'
import type { AuditSealer } from '../audit/sealer.js'
import type { AuditRecord } from '../audit/audit-log.js'
import { auditedWrite } from '../audit/audited-write.js'
import { auditMeta, principalOf, requirePermission } from '../http/guards.js'
import { verifyPassword } from './passwords.js'
import { createSession, hashToken, newSession } from './sessions.js'
import { accountByEmail, signInTx } from './signin.js'
import { membershipsOf } from './memberships.js'
import { assertStatus } from './org-status.js'
import type { LoginLimiter } from './login-limiter.js'
import type { SessionRevocations } from '../scale/session-revocations.js'
import type { AccessTokens } from './tokens.js'
import { PLATFORM_ORG } from '../db/database.js'
import { TokenResponse, tokenResponse } from './auth-tokens.js'
import { checkSecondFactor, type SecondFactorDeps } from './mfa/gate.js'

export interface AuthRouteDeps {
  db: Database
  sealer: Pick<AuditSealer, 'nudge'>
  tokens: Pick<AccessTokens, 'issue'>
  loginLimiter: LoginLimiter
  /** Sessions signed out in this process: their access tokens stop working at once. */
  revokedSessions: SessionRevocations
  /** Sign-ins a minute per client address (each runs scrypt). */
  authRateLimitPerMinute: number
  /** The TOTP step of password sign-ins (mfa/gate.ts); absent: none. */
  secondFactor?: SecondFactorDeps
}

/** Signing in, refreshing and signing out. */
export function registerAuthRoutes(app: Api, deps: AuthRouteDeps): void {
  // Each sign-in runs scrypt (128 MiB): its own limit per client address, and no caching of the tokens.
  const noAuthLimit = { rateLimit: { max: deps.authRateLimitPerMinute, timeWindow: 60_000 }, noStore: true }

  /** An audit entry in its own transaction (and the row write it records, when there is one), sealed soon after. */
  async function auditIn(orgId: string, rec: AuditRecord, write?: { sql: string; params: unknown[] }): Promise<void> {
    await deps.db.inOrg(orgId, (tx) => auditedWrite(tx, { write, auditOrg: orgId, audit: rec, last: true }))
    deps.sealer.nudge(orgId)
  }

  app.post(
    '/auth/login',
    {
      config: noAuthLimit,
      schema: {
        tags: ['auth'],
        summary: 'Sign in with email and password',
        security: [],
        body: Type.Object(
          {
            email: Type.String({ minLength: 3, maxLength: 320 }),
            password: Type.String({ minLength: 1, maxLength: 1024 }),
            orgId: Type.Optional(
              Type.String({ format: 'uuid', description: 'Which organisation to act in, when you belong to several.' }),
            ),
            totpCode: Type.Optional(
              Type.String({
                pattern: '^[0-9]{6}$',
                description: 'The current code of your authenticator, when asked.',
              }),
            ),
            recoveryCode: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })),
          },
          { additionalProperties: false },
        ),
        response: { 200: TokenResponse },
      },
    },
    async (request) => {
      const { email, password, orgId, totpCode, recoveryCode } = request.body
      const ip = request.ip
      await deps.loginLimiter.check(email, ip)
      const found = await signInTx(deps.db, async (tx) => {
        const user = await accountByEmail(tx, email)
        return user ? { user, grants: await membershipsOf(tx, user.id) } : undefined
      })
      const ok = await verifyPassword(password, found?.user.password_hash)
      const meta = { ...auditMeta(request), actor: { kind: 'anonymous' as const, id: email.toLowerCase() } }
      if (!ok || !found) {
        await deps.loginLimiter.failed(email, ip)
        const chain = found?.grants[0]?.orgId ?? PLATFORM_ORG
        await auditIn(chain, {
          ...meta,
          action: 'auth.login.failed',
          data: { email: email.toLowerCase(), reason: found ? 'wrong password' : 'unknown account' },
        })
        throw AUTH.INVALID_CREDENTIALS()
      }
      if (found.user.status !== 'active') throw AUTH.ACCOUNT_DISABLED()
      const grant = orgId ? found.grants.find((g) => g.orgId === orgId) : found.grants[0]
      if (!grant) throw AUTH.NO_MEMBERSHIP()
      const mfa = deps.secondFactor
        ? await checkSecondFactor(deps.secondFactor, {
            userId: found.user.id,
            orgId: grant.orgId,
            email,
            ip,
            totpCode,
            recoveryCode,
            meta,
          })
        : 'none'
      await deps.loginLimiter.succeeded(email)
      const tokens = await deps.db.inOrg(grant.orgId, async (tx, status) => {
        assertStatus(status)
        const { write, session } = newSession(found.user.id, grant.orgId)
        await auditedWrite(tx, {
          write,
          auditOrg: grant.orgId,
          audit: {
            ...meta,
            actor: { kind: 'user', id: found.user.id },
            action: 'auth.login.succeeded',
            target: { kind: 'user', id: found.user.id },
            ...(mfa === 'none' ? {} : { data: { mfa } }),
          },
        })
        return session
      })
      deps.sealer.nudge(grant.orgId)
      return tokenResponse(deps.tokens, found.user.id, grant, found.grants, tokens)
    },
  )

  app.post(
    '/auth/refresh',
    {
      config: noAuthLimit,
      schema: {
        tags: ['auth'],
        summary: 'Trade a refresh token for new tokens (the old refresh token stops working)',
        security: [],
        body: Type.Object(
          { refreshToken: Type.String({ minLength: 1, maxLength: 200 }) },
          { additionalProperties: false },
        ),
        response: { 200: TokenResponse },
      },
    },
    async (request) => {
      const tokenHash = hashToken(request.body.refreshToken)
      const result = await signInTx(deps.db, async (tx) => {
        const [s] = await tx.sql<{
          id: string
          user_id: string
          tenant_id: string
          family_id: string
          used_at: Date | null
          revoked_at: Date | null
          expired: boolean
          user_status: string
        }>(
          `select s.*, s.expires_at <= now() as expired, u.status as user_status from sessions s join users u on u.id = s.user_id where s.token_hash = ? for update of s`,
          [tokenHash],
        )
        if (!s || s.revoked_at || s.expired || s.user_status !== 'active') return { error: 'invalid' as const }
        if (s.used_at) {
          // A refresh token used twice was stolen or replayed: end the whole session family.
          await tx.sql('update sessions set revoked_at = now() where family_id = ?::uuid and revoked_at is null', [
            s.family_id,
          ])
          return { error: 'reused' as const, session: s }
        }
        await tx.sql('update sessions set used_at = now() where id = ?::uuid', [s.id])
        const grants = await membershipsOf(tx, s.user_id)
        return { session: s, grants }
      })
      if (result.error) {
        if (result.error === 'reused') {
          await deps.revokedSessions.add(result.session.family_id)
          await auditIn(result.session.tenant_id, {
            ...auditMeta(request),
            actor: { kind: 'user', id: result.session.user_id },
            action: 'auth.refresh.reused',
            data: { sessionFamily: result.session.family_id },
          })
        }
        throw AUTH.INVALID_REFRESH_TOKEN()
      }
      const { session, grants } = result
      const grant = grants.find((g) => g.orgId === session.tenant_id)
      if (!grant) throw AUTH.NO_MEMBERSHIP()
      const tokens = await deps.db.inOrg(grant.orgId, async (tx, status) => {
        assertStatus(status)
        return createSession(tx, session.user_id, grant.orgId, session.family_id)
      })
      return tokenResponse(deps.tokens, session.user_id, grant, grants, tokens)
    },
  )

  app.post(
    '/auth/logout',
    {
      preHandler: requirePermission(),
      schema: { tags: ['auth'], summary: 'Sign out: ends this session everywhere', response: { 204: Type.Null() } },
    },
    async (request, reply) => {
      const p = principalOf(request)
      if (p.kind !== 'user' || !p.sessionId) return reply.code(204).send(null)
      await deps.revokedSessions.add(p.sessionId)
      await auditIn(
        p.orgId,
        { ...auditMeta(request), action: 'auth.logout', target: { kind: 'user', id: p.userId } },
        {
          sql: 'update sessions set revoked_at = now() where family_id = ?::uuid and revoked_at is null returning id',
          params: [p.sessionId],
        },
      )
      return reply.code(204).send(null)
    },
  )
}
