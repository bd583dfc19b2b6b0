import { randomBytes } from 'node:crypto'
import { Type } from '@sinclair/typebox'
import type { FastifyReply, FastifyRequest } from 'fastify'
import * as client from 'openid-client'
import { v7 as uuidv7 } from 'uuid'
import type { Api } from '../../http/types.js'
import type { OrgTx } from '../../http/route-deps.js'
import type { Database } from '../../db/database.js'
import type { SecretBox } from '../../crypto/secret-box.js'
import type { AuditSealer } from '../../audit/sealer.js'
import { AUTH } from '../../errors.js'
import { auditedWrite } from '../../audit/audited-write.js'
import { auditMeta } from '../../http/guards.js'
import type { AccessTokens } from '../tokens.js'
import { hashToken, newSession } from '../sessions.js'
import { accountByEmail, signInTx } from '../signin.js'
import { membershipsOf } from '../memberships.js'
import { TokenResponse, tokenResponse } from '../auth-tokens.js'
import type { OidcClients } from './oidc.js'
import { sealedSecretFor } from './config-routes.js'
import { type ProviderRow, domainAllowed, mappedRole, orgKindOf, provisionMember } from './provisioning.js'

export interface SsoRouteDeps {
  db: Database
  orgTx: OrgTx
  secrets: SecretBox
  sealer: Pick<AuditSealer, 'nudge'>
  tokens: Pick<AccessTokens, 'issue'>
  oidc: Pick<OidcClients, 'get'>
  /** The kernel's public URL: the redirect URI is `<publicUrl>/v1/auth/sso/callback`, and where the browser returns. */
  publicUrl: string
  authRateLimitPerMinute: number
}

const BROWSER_COOKIE = 'trellis_sso'
const COOKIE_PATH = '/v1/auth/sso'
const LOGIN_TTL_MINUTES = 10
const HANDOFF_TTL_SECONDS = 60
const UUID_HEX = /^[0-9a-f]{32}$/

const uuidOf = (h: string) => `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`
const hexOf = (id: string) => id.replace(/-/g, '')

/**
 * Signing in with an organisation's OpenID Connect provider, for a browser: start (redirect to
 * the provider with PKCE, state and nonce, and a cookie binding the sign-in to this browser),
 * callback (the code is exchanged, the ID token checked, the member provisioned just in time),
 * and the hand-over — the browser returns to the console with a one-time code in the URL
 * fragment, which the console exchanges by POST for the session's tokens.
 */
export function registerSsoRoutes(app: Api, deps: SsoRouteDeps): void {
  const base = deps.publicUrl.replace(/\/+$/, '')
  const redirectUri = `${base}/v1/auth/sso/callback`
  const secure = base.startsWith('https://')
  const limited = { rateLimit: { max: deps.authRateLimitPerMinute, timeWindow: 60_000 }, noStore: true }

  async function provider(orgId: string): Promise<ProviderRow> {
    const [row] = await deps.db.inOrg(orgId, (tx) =>
      tx.sql<ProviderRow>('select * from sso_providers where tenant_id = ?::uuid and enabled', [orgId]),
    )
    if (!row) throw AUTH.SSO_NOT_CONFIGURED()
    return row
  }

  const oidcOf = (p: ProviderRow) =>
    deps.oidc.get(p.issuer, p.client_id, deps.secrets.open(p.client_secret_sealed, sealedSecretFor(p.tenant_id)))

  /** Back to the console with the outcome in the fragment (never sent to a server, never logged). */
  const back = (reply: FastifyReply, returnTo: string, fragment: Record<string, string>) =>
    reply.redirect(`${base}${returnTo}#${new URLSearchParams(fragment).toString()}`, 302)

  app.get(
    '/auth/sso/:orgId/start',
    {
      config: limited,
      schema: {
        tags: ['auth'],
        summary: "Sign in with your organisation's identity provider (a browser navigation: redirects to it)",
        security: [],
        params: Type.Object({ orgId: Type.String({ format: 'uuid' }) }),
        querystring: Type.Object(
          {
            returnTo: Type.Optional(
              Type.String({
                pattern: '^/(?![/\\\\])[^#]*$',
                maxLength: 500,
                description: 'A path on this server to return to (default /console/).',
              }),
            ),
          },
          { additionalProperties: false },
        ),
      },
    },
    async (request, reply) => {
      const { orgId } = request.params
      const p = await provider(orgId)
      const config = await oidcOf(p).catch((err: Error) => {
        throw AUTH.SSO_FAILED({ reason: `the identity provider cannot be reached: ${err.message}` })
      })
      const verifier = client.randomPKCECodeVerifier()
      const state = `${hexOf(orgId)}.${client.randomState()}`
      const nonce = client.randomNonce()
      const browser = randomBytes(32).toString('base64url')
      await deps.db.inOrg(orgId, (tx) =>
        tx.sql(
          `insert into sso_logins (id, tenant_id, state_hash, nonce, verifier_sealed, browser_hash, return_to, expires_at)
           values (?::uuid, ?::uuid, ?, ?, ?, ?, ?, now() + interval '${LOGIN_TTL_MINUTES} minutes')`,
          [
            uuidv7(),
            orgId,
            hashToken(state),
            nonce,
            deps.secrets.seal(verifier, `sso-pkce:${orgId}`),
            hashToken(browser),
            request.query.returnTo ?? '/console/',
          ],
        ),
      )
      const url = client.buildAuthorizationUrl(config, {
        redirect_uri: redirectUri,
        scope: 'openid email profile',
        code_challenge: await client.calculatePKCECodeChallenge(verifier),
        code_challenge_method: 'S256',
        state,
        nonce,
      })
      reply.setCookie(BROWSER_COOKIE, browser, {
        path: COOKIE_PATH,
        httpOnly: true,
        sameSite: 'lax',
        secure,
        maxAge: LOGIN_TTL_MINUTES * 60,
      })
      return reply.redirect(url.href, 302)
    },
  )

  app.get(
    '/auth/sso/callback',
    {
      config: limited,
      schema: {
        tags: ['auth'],
        summary: 'Where the identity provider returns the browser (redirects to the console)',
        security: [],
        querystring: Type.Object(
          { state: Type.String({ minLength: 1, maxLength: 200 }) },
          { additionalProperties: Type.String({ maxLength: 4000 }) },
        ),
      },
    },
    async (request: FastifyRequest<{ Querystring: { state: string } }>, reply) => {
      const state = request.query.state
      const [orgHex] = state.split('.')
      if (!orgHex || !UUID_HEX.test(orgHex)) throw AUTH.SSO_FAILED({ reason: 'unknown sign-in' })
      const orgId = uuidOf(orgHex)
      const browser = request.cookies?.[BROWSER_COOKIE] ?? ''
      // The sign-in in flight: spent now, whatever follows — a state works once.
      const login = await deps.db.inOrg(orgId, async (tx) => {
        const [row] = await tx.sql<{
          id: string
          nonce: string
          verifier_sealed: string
          browser_hash: string
          return_to: string
        }>(
          `update sso_logins set used_at = now() where state_hash = ? and used_at is null and expires_at > now()
           returning id, nonce, verifier_sealed, browser_hash, return_to`,
          [hashToken(state)],
        )
        return row
      })
      if (!login) throw AUTH.SSO_FAILED({ reason: 'the sign-in is unknown, expired or already used; start again' })
      reply.clearCookie(BROWSER_COOKIE, { path: COOKIE_PATH, httpOnly: true, sameSite: 'lax', secure })
      const meta = { ip: request.ip, requestId: String(request.id) }
      try {
        if (hashToken(browser) !== login.browser_hash)
          throw AUTH.SSO_FAILED({ reason: 'the sign-in was started in another browser' })
        const p = await provider(orgId)
        const config = await oidcOf(p)
        const current = new URL(`${redirectUri}?${request.raw.url!.split('?')[1] ?? ''}`)
        const tokens = await client
          .authorizationCodeGrant(config, current, {
            pkceCodeVerifier: deps.secrets.open(login.verifier_sealed, `sso-pkce:${orgId}`),
            expectedState: state,
            expectedNonce: login.nonce,
            idTokenExpected: true,
          })
          .catch((err: Error) => {
            throw AUTH.SSO_FAILED({ reason: `the identity provider's answer was refused: ${err.message}` })
          })
        const claims = tokens.claims()!
        const email = typeof claims.email === 'string' ? claims.email : ''
        if (!email || claims.email_verified === false)
          throw AUTH.SSO_FAILED({ reason: 'the identity provider vouched for no verified e-mail address' })
        if (!domainAllowed(p.allowed_domains, email))
          throw AUTH.SSO_FAILED({ reason: `the organisation does not accept addresses of ${email.split('@')[1]}` })
        const account = await signInTx(deps.db, (tx) => accountByEmail(tx, email))
        if (account && account.status !== 'active') throw AUTH.ACCOUNT_DISABLED()
        const code = `trs_${orgHex}_${randomBytes(32).toString('base64url')}`
        await deps.orgTx(orgId, async (tx) => {
          const kind = await orgKindOf(tx, orgId)
          if (!kind) throw AUTH.SSO_NOT_CONFIGURED()
          const name = typeof claims.name === 'string' && claims.name ? claims.name : email
          const member = await provisionMember(
            tx,
            { id: orgId, kind },
            { existing: account?.id, email, name, role: mappedRole(p, claims as Record<string, unknown>) },
            meta,
          )
          await auditedWrite(tx, {
            write: {
              sql: `insert into sso_handoffs (id, tenant_id, code_hash, user_id, expires_at) values (?::uuid, ?::uuid, ?, ?::uuid, now() + interval '${HANDOFF_TTL_SECONDS} seconds') returning id`,
              params: [uuidv7(), orgId, hashToken(code), member.userId],
            },
            auditOrg: orgId,
            audit: {
              ...meta,
              actor: { kind: 'user', id: member.userId },
              action: 'auth.sso.authenticated',
              target: { kind: 'user', id: member.userId },
              data: { issuer: p.issuer, subject: String(claims.sub), email, joined: member.joined },
            },
          })
        })
        return back(reply, login.return_to, { sso_code: code })
      } catch (err) {
        const e = err as { code?: unknown; message: string }
        if (typeof e.code !== 'string' || !e.code.startsWith('AUTH_')) throw err
        await deps.orgTx(orgId, (tx) =>
          auditedWrite(tx, {
            auditOrg: orgId,
            audit: {
              ...meta,
              actor: { kind: 'anonymous', id: request.ip },
              action: 'auth.sso.failed',
              data: { code: e.code, reason: e.message },
            },
          }),
        )
        return back(reply, login.return_to, { sso_error: e.code })
      }
    },
  )

  app.post(
    '/auth/sso/exchange',
    {
      config: limited,
      schema: {
        tags: ['auth'],
        summary: 'Trade the one-time code from the SSO redirect for tokens (once, within a minute)',
        security: [],
        body: Type.Object({ code: Type.String({ minLength: 1, maxLength: 200 }) }, { additionalProperties: false }),
        response: { 200: TokenResponse },
      },
    },
    async (request) => {
      const m = /^trs_([0-9a-f]{32})_[A-Za-z0-9_-]{43}$/.exec(request.body.code)
      if (!m) throw AUTH.SSO_CODE_INVALID()
      const orgId = uuidOf(m[1]!)
      const [spent] = await deps.db.inOrg(orgId, (tx) =>
        tx.sql<{ user_id: string }>(
          'update sso_handoffs set used_at = now() where code_hash = ? and used_at is null and expires_at > now() returning user_id',
          [hashToken(request.body.code)],
        ),
      )
      if (!spent) throw AUTH.SSO_CODE_INVALID()
      const grants = await signInTx(deps.db, (tx) => membershipsOf(tx, spent.user_id))
      const grant = grants.find((g) => g.orgId === orgId)
      if (!grant) throw AUTH.NO_MEMBERSHIP()
      const session = await deps.orgTx(orgId, async (tx) => {
        const { write, session } = newSession(spent.user_id, orgId)
        await auditedWrite(tx, {
          write,
          auditOrg: orgId,
          audit: {
            ...auditMeta(request),
            actor: { kind: 'user', id: spent.user_id },
            action: 'auth.login.succeeded',
            target: { kind: 'user', id: spent.user_id },
            data: { method: 'sso' },
          },
        })
        return session
      })
      return tokenResponse(deps.tokens, spent.user_id, grant, grants, session)
    },
  )
}
