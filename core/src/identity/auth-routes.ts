import { Type } from '@sinclair/typebox'
import type { Api } from '../http/types.js'
import type { KernelContext } from '../kernel-context.js'
import { AUTH } from '../errors.js'
import { appendAudit } from '../audit/audit-log.js'
import { auditMeta, principalOf, requirePermission } from '../http/guards.js'
import { verifyPassword } from './passwords.js'
import { createSession, hashToken } from './sessions.js'
import { accountByEmail, signInTx } from './signin.js'
import { membershipsOf, type MembershipGrant } from './memberships.js'
import { assertStatus } from './org-status.js'
import { PLATFORM_ORG } from '../db/database.js'
import { UserSchema } from './entities.js'
import type { Principal } from './principal.js'
import { PartnerSchema, TenantSchema } from '../tenancy/entities.js'
import { DEFAULT_HTTP_LIMITS } from '../http/server-limits.js'

const Uuid = Type.String({ format: 'uuid' })

const TokenResponse = Type.Object({
  accessToken: Type.String(),
  tokenType: Type.Literal('Bearer'),
  expiresIn: Type.Integer({ description: 'Seconds until the access token expires.' }),
  refreshToken: Type.String({ description: 'Single use: each refresh returns a new one.' }),
  org: Type.Object({ id: Uuid, kind: Type.String(), role: Type.String() }),
  memberships: Type.Array(Type.Object({ orgId: Uuid, orgKind: Type.String(), role: Type.String() })),
})

export function registerAuthRoutes(app: Api, k: KernelContext): void {
  // Each sign-in runs scrypt (128 MiB): its own limit per client address, and no caching of the tokens.
  const noAuthLimit = {
    rateLimit: { max: (k.config.httpLimits ?? DEFAULT_HTTP_LIMITS).authRateLimitPerMinute, timeWindow: 60_000 },
    noStore: true,
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
          },
          { additionalProperties: false },
        ),
        response: { 200: TokenResponse },
      },
    },
    async (request) => {
      const { email, password, orgId } = request.body
      const ip = request.ip
      k.loginLimiter.check(email, ip)
      const found = await signInTx(k.db, async (tx) => {
        const user = await accountByEmail(tx, email)
        return user ? { user, grants: await membershipsOf(tx, user.id) } : undefined
      })
      const ok = await verifyPassword(password, found?.user.password_hash)
      const meta = { ...auditMeta(request), actor: { kind: 'anonymous' as const, id: email.toLowerCase() } }
      if (!ok || !found) {
        k.loginLimiter.failed(email, ip)
        const chain = found?.grants[0]?.orgId ?? PLATFORM_ORG
        await auditIn(k, chain, {
          ...meta,
          action: 'auth.login.failed',
          data: { email: email.toLowerCase(), reason: found ? 'wrong password' : 'unknown account' },
        })
        throw AUTH.INVALID_CREDENTIALS()
      }
      if (found.user.status !== 'active') throw AUTH.ACCOUNT_DISABLED()
      const grant = orgId ? found.grants.find((g) => g.orgId === orgId) : found.grants[0]
      if (!grant) throw AUTH.NO_MEMBERSHIP()
      k.loginLimiter.succeeded(email)
      const tokens = await k.db.inOrg(grant.orgId, async (tx, status) => {
        assertStatus(status)
        const session = await createSession(tx, found.user.id, grant.orgId)
        await appendAudit(tx, grant.orgId, {
          ...meta,
          actor: { kind: 'user', id: found.user.id },
          action: 'auth.login.succeeded',
          target: { kind: 'user', id: found.user.id },
        })
        return session
      })
      k.sealer.nudge(grant.orgId)
      return respond(k, found.user.id, grant, found.grants, tokens)
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
      const result = await signInTx(k.db, async (tx) => {
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
          k.revokedSessions.add(result.session.family_id)
          await auditIn(k, result.session.tenant_id, {
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
      const tokens = await k.db.inOrg(grant.orgId, async (tx, status) => {
        assertStatus(status)
        return createSession(tx, session.user_id, grant.orgId, session.family_id)
      })
      return respond(k, session.user_id, grant, grants, tokens)
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
      await k.db.inOrg(p.orgId, (tx) =>
        tx.sql('update sessions set revoked_at = now() where family_id = ?::uuid and revoked_at is null', [
          p.sessionId,
        ]),
      )
      k.revokedSessions.add(p.sessionId)
      await auditIn(k, p.orgId, {
        ...auditMeta(request),
        action: 'auth.logout',
        target: { kind: 'user', id: p.userId },
      })
      return reply.code(204).send(null)
    },
  )

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
      const row = await k.db.withEntityManager(p.orgId, async (em) => {
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

async function respond(
  k: KernelContext,
  userId: string,
  grant: MembershipGrant,
  grants: MembershipGrant[],
  session: { sessionId: string; familyId: string; refreshToken: string },
) {
  const { token, expiresIn } = await k.tokens.issue({
    userId,
    orgId: grant.orgId,
    orgKind: grant.orgKind,
    permissions: grant.permissions,
    sessionId: session.familyId,
  })
  return {
    accessToken: token,
    tokenType: 'Bearer' as const,
    expiresIn,
    refreshToken: session.refreshToken,
    org: { id: grant.orgId, kind: grant.orgKind, role: grant.role },
    memberships: grants.map((g) => ({ orgId: g.orgId, orgKind: g.orgKind, role: g.role })),
  }
}

async function auditIn(k: KernelContext, orgId: string, rec: Parameters<typeof appendAudit>[2]): Promise<void> {
  await k.db.inOrg(orgId, (tx) => appendAudit(tx, orgId, rec))
  k.sealer.nudge(orgId)
}

// A verified token's principal is reused until it expires: sort its permissions once.
const sorted = new WeakMap<Principal, string[]>()
function sortedPermissions(p: Principal): string[] {
  let list = sorted.get(p)
  if (!list) sorted.set(p, (list = [...p.permissions].sort()))
  return list
}
