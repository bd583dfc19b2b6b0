import { Type } from '@sinclair/typebox'
import type { Api } from '../http/types.js'
import type { OrgTx } from '../http/route-deps.js'
import type { Database } from '../db/database.js'
import type { AuditSealer } from '../audit/sealer.js'
import type { AuditRecord } from '../audit/audit-log.js'
import { PLATFORM_ORG } from '../db/database.js'
import { AUTH } from '../errors.js'
import { auditedWrite } from '../audit/audited-write.js'
import { auditMeta, principalOf, requirePermission } from '../http/guards.js'
import type { Mailer } from '../mail/mailer.js'
import { passwordResetMail } from '../mail/templates.js'
import { assertPasswordStrength, hashPassword, verifyPassword } from './passwords.js'
import { accountByEmail, signInTx } from './signin.js'
import { membershipsOf } from './memberships.js'
import type { LoginLimiter } from './login-limiter.js'
import { announceRevoked, type RevocationNotice } from './revocation.js'
import {
  PASSWORD_RESET_TTL_MINUTES,
  completePasswordReset,
  endSessionsOf,
  requestPasswordReset,
} from './password-reset.js'

export interface PasswordRouteDeps {
  db: Database
  orgTx: OrgTx
  sealer: Pick<AuditSealer, 'nudge'>
  mailer: Pick<Mailer, 'configured' | 'send' | 'link'>
  /** Wrong current passwords count like failed sign-ins. */
  loginLimiter: LoginLimiter
  /** Reset requests per address and per client address (each may send a mail). */
  resetLimiter: LoginLimiter
  revocation: RevocationNotice
  /** Requests a minute per client address on these routes (each runs scrypt or sends mail). */
  authRateLimitPerMinute: number
}

const NewPassword = Type.String({ minLength: 1, maxLength: 1024 })

/** Changing your password, and resetting a forgotten one by e-mail. */
export function registerPasswordRoutes(app: Api, deps: PasswordRouteDeps): void {
  const limited = { rateLimit: { max: deps.authRateLimitPerMinute, timeWindow: 60_000 }, noStore: true }

  /** An audit entry in the chain of the account's first organisation (the platform's when it has none). */
  async function auditAccount(userId: string | undefined, rec: AuditRecord): Promise<void> {
    const org = userId
      ? ((await signInTx(deps.db, (tx) => membershipsOf(tx, userId)))[0]?.orgId ?? PLATFORM_ORG)
      : PLATFORM_ORG
    await deps.db.inOrg(org, (tx) => auditedWrite(tx, { auditOrg: org, audit: rec, last: true }))
    deps.sealer.nudge(org)
  }

  /** Whether every one of these organisations refuses password sign-ins (SSO only). */
  async function everyOrgSsoOnly(orgs: string[]): Promise<boolean> {
    for (const org of orgs) {
      const [row] = await deps.db.inOrg(org, (tx) =>
        tx.sql('select 1 from sso_providers where tenant_id = ?::uuid and enabled and sso_only', [org]),
      )
      if (!row) return false
    }
    return true
  }

  async function announce(ended: Array<{ tenant_id: string; family_id: string }>): Promise<void> {
    const byOrg = new Map<string, string[]>()
    for (const e of ended) byOrg.set(e.tenant_id, [...(byOrg.get(e.tenant_id) ?? []), e.family_id])
    for (const [org, families] of byOrg) await announceRevoked(deps.revocation, org, families)
  }

  app.post(
    '/auth/password',
    {
      preHandler: requirePermission(),
      config: limited,
      schema: {
        tags: ['auth'],
        summary: 'Change your password (your other sessions end)',
        body: Type.Object(
          { currentPassword: Type.String({ minLength: 1, maxLength: 1024 }), newPassword: NewPassword },
          { additionalProperties: false },
        ),
        response: { 204: Type.Null() },
      },
    },
    async (request, reply) => {
      const p = principalOf(request)
      if (p.kind !== 'user') throw AUTH.USER_REQUIRED()
      const { currentPassword, newPassword } = request.body
      const [me] = await deps.orgTx(p.orgId, (tx) =>
        tx.sql<{ email: string }>('select email from users where id = ?::uuid', [p.userId]),
      )
      if (!me) throw AUTH.UNAUTHENTICATED()
      await deps.loginLimiter.check(me.email, request.ip)
      const account = await signInTx(deps.db, (tx) => accountByEmail(tx, me.email))
      if (!(await verifyPassword(currentPassword, account?.password_hash))) {
        await deps.loginLimiter.failed(me.email, request.ip)
        await auditAccount(p.userId, {
          ...auditMeta(request),
          action: 'auth.password.change_failed',
          target: { kind: 'user', id: p.userId },
        })
        throw AUTH.WRONG_PASSWORD()
      }
      await deps.loginLimiter.succeeded(me.email)
      assertPasswordStrength(newPassword)
      const hash = await hashPassword(newPassword)
      // Other sessions end first: should the password write fail, nothing is left signed in with the old one.
      const ended = await signInTx(deps.db, (tx) => endSessionsOf(tx, p.userId, p.sessionId))
      await announce(ended)
      await deps.orgTx(p.orgId, (tx) =>
        auditedWrite(tx, {
          write: {
            sql: 'update users set password_hash = ? where id = ?::uuid returning id',
            params: [hash, p.userId],
          },
          auditOrg: p.orgId,
          audit: {
            ...auditMeta(request),
            action: 'auth.password.changed',
            target: { kind: 'user', id: p.userId },
            data: { sessionsEnded: ended.length },
          },
        }),
      )
      return reply.code(204).send(null)
    },
  )

  app.post(
    '/auth/password/forgot',
    {
      config: limited,
      schema: {
        tags: ['auth'],
        summary: 'Send a password reset link to an address',
        description:
          'The answer is the same whether or not an account owns the address; when one does, a single-use link that expires is mailed to it.',
        security: [],
        body: Type.Object({ email: Type.String({ minLength: 3, maxLength: 320 }) }, { additionalProperties: false }),
        response: { 202: Type.Null() },
      },
    },
    async (request, reply) => {
      if (!deps.mailer.configured) throw AUTH.MAIL_NOT_CONFIGURED()
      const email = request.body.email
      // Counted per address and per client whether or not an account exists, so the limit says nothing either.
      await deps.resetLimiter.check(email, request.ip)
      await deps.resetLimiter.failed(email, request.ip)
      // A password is no use to someone whose every organisation signs in only through its identity
      // provider: no link is issued (the answer stays the same).
      const account = await signInTx(deps.db, async (tx) => {
        const found = await accountByEmail(tx, email)
        return found ? { id: found.id, grants: await membershipsOf(tx, found.id) } : undefined
      })
      const ssoOnly = account?.grants.length ? await everyOrgSsoOnly(account.grants.map((g) => g.orgId)) : false
      const issued = ssoOnly ? undefined : await signInTx(deps.db, (tx) => requestPasswordReset(tx, email))
      const meta = { ...auditMeta(request), actor: { kind: 'anonymous' as const, id: email.toLowerCase() } }
      await auditAccount(account?.id, {
        ...meta,
        action: 'auth.password_reset.requested',
        ...(account ? { target: { kind: 'user', id: account.id } } : {}),
        data: {
          email: email.toLowerCase(),
          account: account !== undefined,
          ...(ssoOnly ? { refused: 'sso only' } : {}),
        },
      })
      if (issued)
        deps.mailer.send(
          'password-reset',
          passwordResetMail(
            email,
            deps.mailer.link('/reset-password', { token: issued.token }),
            PASSWORD_RESET_TTL_MINUTES,
          ),
        )
      return reply.code(202).send(null)
    },
  )

  app.post(
    '/auth/password/reset',
    {
      config: limited,
      schema: {
        tags: ['auth'],
        summary: 'Choose a new password with the token from a reset e-mail (every session ends)',
        security: [],
        body: Type.Object(
          { token: Type.String({ minLength: 1, maxLength: 200 }), newPassword: NewPassword },
          { additionalProperties: false },
        ),
        response: { 204: Type.Null() },
      },
    },
    async (request, reply) => {
      const { token, newPassword } = request.body
      assertPasswordStrength(newPassword)
      const hash = await hashPassword(newPassword)
      const done = await signInTx(deps.db, (tx) => completePasswordReset(tx, token, hash))
      await announce(done.ended)
      await auditAccount(done.userId, {
        ...auditMeta(request),
        actor: { kind: 'user', id: done.userId },
        action: 'auth.password_reset.completed',
        target: { kind: 'user', id: done.userId },
        data: { sessionsEnded: done.ended.length },
      })
      return reply.code(204).send(null)
    },
  )
}
