import { Type } from '@sinclair/typebox'
import type { Api } from '../http/types.js'
import type { OrgTx } from '../http/route-deps.js'
import type { Database } from '../db/database.js'
import { AUTH } from '../errors.js'
import { auditMeta } from '../http/guards.js'
import { assertPasswordStrength, hashPassword, verifyPassword } from './passwords.js'
import { accountByEmail, signInTx } from './signin.js'
import type { LoginLimiter } from './login-limiter.js'
import { acceptInvitation, checkInvitation, parseInvitationToken, type InvitationRow } from './invitations.js'

const Uuid = Type.String({ format: 'uuid' })

export interface InvitationAcceptDeps {
  orgTx: OrgTx
  db: Database
  loginLimiter: LoginLimiter
  /** Sign-ins a minute per client address (accepting may run scrypt twice). */
  authRateLimitPerMinute: number
}

/** Accepting an invitation: as the invited account (signed in, or by its password), or as a new account. */
export function registerInvitationAcceptRoutes(app: Api, deps: InvitationAcceptDeps): void {
  app.post(
    '/invitations/accept',
    {
      // May run scrypt twice (a password checked, a new one hashed): the sign-in limit per client address.
      config: {
        rateLimit: { max: deps.authRateLimitPerMinute, timeWindow: 60_000 },
        noStore: true,
      },
      schema: {
        tags: ['identity'],
        summary: 'Accept an invitation',
        description:
          "Signed in as the invited account (bearer token), or with that account's password, or — when no account owns the address — with a name and password for the new account.",
        security: [],
        body: Type.Object(
          {
            token: Type.String({ minLength: 1, maxLength: 200 }),
            name: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
            password: Type.Optional(Type.String({ minLength: 1, maxLength: 1024 })),
          },
          { additionalProperties: false },
        ),
        response: {
          200: Type.Object({ userId: Uuid, org: Type.Object({ id: Uuid, kind: Type.String(), role: Type.String() }) }),
        },
      },
    },
    async (request) => {
      const { token, name, password } = request.body
      const { id, secret } = parseInvitationToken(token)
      const found = await signInTx(deps.db, async (tx) => {
        const [inv] = await tx.sql<InvitationRow>('select * from trellis_auth_invitation(?::uuid)', [id])
        const valid = checkInvitation(inv, secret)
        return { inv: valid, account: await accountByEmail(tx, valid.email) }
      })
      const { inv, account } = found
      const caller = request.principal
      let who: Parameters<typeof acceptInvitation>[2]
      if (account) {
        if (caller?.kind === 'user' && caller.userId === account.id) who = { account }
        else if (password !== undefined) {
          await deps.loginLimiter.check(inv.email, request.ip)
          if (!(await verifyPassword(password, account.password_hash))) {
            await deps.loginLimiter.failed(inv.email, request.ip)
            throw AUTH.INVALID_CREDENTIALS()
          }
          await deps.loginLimiter.succeeded(inv.email)
          who = { account }
        } else throw AUTH.INVITATION_ACCOUNT_REQUIRED()
        if (account.status !== 'active') throw AUTH.ACCOUNT_DISABLED()
      } else {
        if (name === undefined || password === undefined) throw AUTH.INVITATION_ACCOUNT_REQUIRED()
        assertPasswordStrength(password)
        who = { newAccount: { name, passwordHash: await hashPassword(password) } }
      }
      const accepted = await deps.orgTx(inv.tenant_id, (tx) => acceptInvitation(tx, inv, who, auditMeta(request)))
      return { userId: accepted.userId, org: { id: inv.tenant_id, kind: inv.org_kind, role: accepted.role } }
    },
  )
}
