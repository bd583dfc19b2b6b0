import { Type } from '@sinclair/typebox'
import type { Api } from '../../http/types.js'
import type { OrgTx } from '../../http/route-deps.js'
import type { Database } from '../../db/database.js'
import type { SecretBox } from '../../crypto/secret-box.js'
import { AUTH, KRN } from '../../errors.js'
import { auditedWrite } from '../../audit/audited-write.js'
import type { AuditRecord } from '../../audit/audit-log.js'
import { auditMeta, principalOf, requirePermission } from '../../http/guards.js'
import { KERNEL_PERMISSIONS as P } from '../permissions.js'
import { verifyPassword } from '../passwords.js'
import { accountByEmail, signInTx } from '../signin.js'
import { membershipsOf } from '../memberships.js'
import type { LoginLimiter } from '../login-limiter.js'
import { enrolTotp, factorOf, removeTotp, useRecoveryCode, useTotpCode } from './factors.js'

export interface MfaRouteDeps {
  db: Database
  orgTx: OrgTx
  secrets: SecretBox
  loginLimiter: LoginLimiter
  /** Requests a minute per client address on the sign-in enrolment (it runs scrypt). */
  authRateLimitPerMinute: number
}

const Enrolment = Type.Object({
  secret: Type.String({ description: 'Base32 TOTP secret: shown once.' }),
  otpauthUri: Type.String({ description: 'otpauth:// URI for an authenticator app (as a QR code).' }),
  recoveryCodes: Type.Array(Type.String(), {
    description: 'Single-use codes for when the device is lost: shown once.',
  }),
})
const Code = Type.String({ minLength: 6, maxLength: 6, pattern: '^[0-9]{6}$' })
const Policy = Type.Object({ mfaRequired: Type.Boolean() })

/** Enrolling a TOTP authenticator (signed in, or at sign-in when the organisation requires one), and the organisation's policy. */
export function registerMfaRoutes(app: Api, deps: MfaRouteDeps): void {
  async function audit(orgId: string, rec: AuditRecord): Promise<void> {
    await deps.orgTx(orgId, (tx) => auditedWrite(tx, { auditOrg: orgId, audit: rec, last: true }))
  }

  async function enrol(userId: string, email: string) {
    return signInTx(deps.db, async (tx) => {
      if ((await factorOf(tx, userId))?.confirmed)
        throw KRN.CONFLICT({ reason: 'an authenticator is enrolled already; remove it first' })
      const e = await enrolTotp(tx, deps.secrets, userId, email)
      return { secret: e.secret, otpauthUri: e.uri, recoveryCodes: e.recoveryCodes }
    })
  }

  app.get(
    '/me/mfa',
    {
      preHandler: requirePermission(),
      schema: {
        tags: ['auth'],
        summary: 'Whether your account has a TOTP authenticator',
        response: {
          200: Type.Object({
            totp: Type.Union([Type.Literal('none'), Type.Literal('pending'), Type.Literal('enrolled')]),
          }),
        },
      },
    },
    async (request) => {
      const p = principalOf(request)
      if (p.kind !== 'user') throw AUTH.USER_REQUIRED()
      const f = await signInTx(deps.db, (tx) => factorOf(tx, p.userId))
      return { totp: !f ? ('none' as const) : f.confirmed ? ('enrolled' as const) : ('pending' as const) }
    },
  )

  app.post(
    '/me/mfa/totp',
    {
      preHandler: requirePermission(),
      config: { noStore: true },
      schema: {
        tags: ['auth'],
        summary: 'Start enrolling a TOTP authenticator (confirm it with a code)',
        response: { 201: Enrolment },
      },
    },
    async (request, reply) => {
      const p = principalOf(request)
      if (p.kind !== 'user') throw AUTH.USER_REQUIRED()
      const [me] = await deps.orgTx(p.orgId, (tx) =>
        tx.sql<{ email: string }>('select email from users where id = ?::uuid', [p.userId]),
      )
      const enrolment = await enrol(p.userId, me!.email)
      await audit(p.orgId, {
        ...auditMeta(request),
        action: 'auth.mfa.enrol_started',
        target: { kind: 'user', id: p.userId },
      })
      return reply.code(201).send(enrolment)
    },
  )

  app.post(
    '/me/mfa/totp/confirm',
    {
      preHandler: requirePermission(),
      schema: {
        tags: ['auth'],
        summary: 'Confirm the authenticator with a current code',
        body: Type.Object({ code: Code }, { additionalProperties: false }),
        response: { 204: Type.Null() },
      },
    },
    async (request, reply) => {
      const p = principalOf(request)
      if (p.kind !== 'user') throw AUTH.USER_REQUIRED()
      const ok = await signInTx(deps.db, async (tx) => {
        const f = await factorOf(tx, p.userId)
        if (!f) throw KRN.CONFLICT({ reason: 'start enrolling with POST /v1/me/mfa/totp first' })
        if (f.confirmed) throw KRN.CONFLICT({ reason: 'the authenticator is confirmed already' })
        return useTotpCode(tx, deps.secrets, p.userId, request.body.code)
      })
      if (!ok) throw AUTH.MFA_CODE_INVALID()
      await audit(p.orgId, {
        ...auditMeta(request),
        action: 'auth.mfa.enrolled',
        target: { kind: 'user', id: p.userId },
      })
      return reply.code(204).send(null)
    },
  )

  app.delete(
    '/me/mfa/totp',
    {
      preHandler: requirePermission(),
      schema: {
        tags: ['auth'],
        summary: 'Remove your authenticator (give a current code or a recovery code)',
        body: Type.Object(
          { code: Type.Optional(Code), recoveryCode: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })) },
          { additionalProperties: false },
        ),
        response: { 204: Type.Null() },
      },
    },
    async (request, reply) => {
      const p = principalOf(request)
      if (p.kind !== 'user') throw AUTH.USER_REQUIRED()
      const { code, recoveryCode } = request.body
      const ok = await signInTx(deps.db, async (tx) => {
        const f = await factorOf(tx, p.userId)
        if (!f) return true
        // A pending (unconfirmed) one needs no code; a confirmed one needs proof of the device or a recovery code.
        const proven =
          !f.confirmed ||
          (code !== undefined && (await useTotpCode(tx, deps.secrets, p.userId, code))) ||
          (recoveryCode !== undefined && (await useRecoveryCode(tx, p.userId, recoveryCode)))
        if (proven) await removeTotp(tx, p.userId)
        return proven
      })
      if (!ok) throw AUTH.MFA_CODE_INVALID()
      await audit(p.orgId, {
        ...auditMeta(request),
        action: 'auth.mfa.removed',
        target: { kind: 'user', id: p.userId },
      })
      return reply.code(204).send(null)
    },
  )

  app.post(
    '/auth/mfa/enrol',
    {
      config: { rateLimit: { max: deps.authRateLimitPerMinute, timeWindow: 60_000 }, noStore: true },
      schema: {
        tags: ['auth'],
        summary: 'Enrol an authenticator at sign-in, when your organisation requires one',
        description:
          'Answers AUTH_ERR_MFA_ENROLMENT_REQUIRED sign-ins: with the email and password, returns a TOTP secret and recovery codes; sign in again with `totpCode` to confirm it.',
        security: [],
        body: Type.Object(
          {
            email: Type.String({ minLength: 3, maxLength: 320 }),
            password: Type.String({ minLength: 1, maxLength: 1024 }),
          },
          { additionalProperties: false },
        ),
        response: { 201: Enrolment },
      },
    },
    async (request, reply) => {
      const { email, password } = request.body
      await deps.loginLimiter.check(email, request.ip)
      const found = await signInTx(deps.db, async (tx) => {
        const user = await accountByEmail(tx, email)
        return user ? { user, grants: await membershipsOf(tx, user.id) } : undefined
      })
      if (!(await verifyPassword(password, found?.user.password_hash)) || !found) {
        await deps.loginLimiter.failed(email, request.ip)
        throw AUTH.INVALID_CREDENTIALS()
      }
      if (found.user.status !== 'active') throw AUTH.ACCOUNT_DISABLED()
      const org = found.grants[0]?.orgId
      if (!org) throw AUTH.NO_MEMBERSHIP()
      const enrolment = await enrol(found.user.id, email)
      await audit(org, {
        ...auditMeta(request),
        actor: { kind: 'user', id: found.user.id },
        action: 'auth.mfa.enrol_started',
        target: { kind: 'user', id: found.user.id },
      })
      return reply.code(201).send(enrolment)
    },
  )

  app.get(
    '/identity/policy',
    {
      preHandler: requirePermission(P.usersRead),
      schema: { tags: ['identity'], summary: "Your organisation's sign-in policy", response: { 200: Policy } },
    },
    async (request) => {
      const p = principalOf(request)
      const [row] = await deps.orgTx(p.orgId, (tx) =>
        tx.sql<{ mfa_required: boolean }>('select mfa_required from org_identity_policies where tenant_id = ?::uuid', [
          p.orgId,
        ]),
      )
      return { mfaRequired: row?.mfa_required ?? false }
    },
  )

  app.put(
    '/identity/policy',
    {
      preHandler: requirePermission(P.usersManage),
      schema: {
        tags: ['identity'],
        summary: "Set your organisation's sign-in policy (MFA required for password sign-ins)",
        body: Type.Object({ mfaRequired: Type.Boolean() }, { additionalProperties: false }),
        response: { 200: Policy },
      },
    },
    async (request) => {
      const p = principalOf(request)
      const { mfaRequired } = request.body
      await deps.orgTx(p.orgId, (tx) =>
        auditedWrite(tx, {
          write: {
            sql: `insert into org_identity_policies (tenant_id, mfa_required) values (?::uuid, ?)
                  on conflict (tenant_id) do update set mfa_required = excluded.mfa_required, updated_at = now() returning tenant_id`,
            params: [p.orgId, mfaRequired],
          },
          auditOrg: p.orgId,
          audit: { ...auditMeta(request), action: 'identity.policy.updated', data: { mfaRequired } },
        }),
      )
      return { mfaRequired }
    },
  )
}
