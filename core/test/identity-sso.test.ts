import t from 'tap'
import { DB_KINDS, startTestKernel, createTenantWithAdmin } from './helpers/test-kernel.js'
import { startOidcProvider } from './helpers/oidc-provider.js'
import { startSmtpServer } from './helpers/smtp-server.js'

// Single sign-on with OpenID Connect against a real provider on loopback (oidc-provider): the
// browser flow end to end, just-in-time membership with a role from the provider's claims, and
// the attacks — a forged ID token, a wrong audience, a replayed nonce or state, another
// browser, a disallowed domain — plus organisations that refuse passwords.
const PUBLIC_URL = 'http://kernel.test'

for (const kind of DB_KINDS) {
  t.test(`OpenID Connect sign-in on ${kind}`, async (t) => {
    const idp = await startOidcProvider(`${PUBLIC_URL}/v1/auth/sso/callback`)
    t.teardown(idp.close)
    const smtp = await startSmtpServer()
    t.teardown(smtp.close)
    const k = await startTestKernel(t, kind, {
      env: {
        TRELLIS_PUBLIC_URL: PUBLIC_URL,
        TRELLIS_SMTP_URL: smtp.url,
        TRELLIS_MAIL_FROM: 'Trellis <t@trellis.test>',
      },
      events: { egressAllow: ['127.0.0.1'] },
    })
    const a = await createTenantWithAdmin(k, `sso-a-${kind}`)
    const domain = `sso-a-${kind}.test`
    const configure = (extra: Record<string, unknown> = {}) =>
      k.req('PUT', '/v1/identity/sso', {
        token: a.token,
        body: {
          issuer: idp.issuer,
          clientId: idp.clientId,
          clientSecret: idp.clientSecret,
          allowedDomains: [domain],
          roleClaim: 'groups',
          roleMap: { 'erp-admins': 'tenant_admin' },
          defaultRole: 'tenant_member',
          ...extra,
        },
      })

    /** The browser's part: start at the kernel, sign in at the provider, come back to the callback. */
    const start = async (orgId = a.orgId) => {
      const r = await k.req('GET', `/v1/auth/sso/${orgId}/start?returnTo=/console/`)
      const cookie = String(r.headers['set-cookie'] ?? '').split(';')[0]!
      return { status: r.status, body: r.body, location: String(r.headers.location ?? ''), cookie }
    }
    const callback = async (returned: URL, cookie: string) => {
      const r = await k.req('GET', `/v1/auth/sso/callback${returned.search}`, { headers: { cookie } })
      const location = String(r.headers.location ?? '')
      const fragment = new URLSearchParams(location.split('#')[1] ?? '')
      return { r, location, code: fragment.get('sso_code'), error: fragment.get('sso_error') }
    }
    const signIn = async (accountId: string) => {
      const s = await start()
      return callback(await idp.authorize(s.location, accountId), s.cookie)
    }
    const userCount = async (email: string) =>
      (await k.ownerSql('select count(*)::int as n from users where lower(email) = lower(?)', [email]))[0].n

    t.test('an organisation configures its provider; the secret is sealed and never shown', async (t) => {
      const saved = await configure()
      t.equal(saved.status, 200, JSON.stringify(saved.body))
      t.notOk(JSON.stringify(saved.body).includes(idp.clientSecret))
      const read = await k.req('GET', '/v1/identity/sso', { token: a.token })
      t.equal(read.body.issuer, idp.issuer)
      t.notOk(JSON.stringify(read.body).includes(idp.clientSecret), 'reading it shows no secret')
      const [row] = await k.ownerSql('select client_secret_sealed from sso_providers where tenant_id = ?::uuid', [
        a.orgId,
      ])
      t.notOk(row.client_secret_sealed.includes(idp.clientSecret), 'sealed at rest')
      const escalate = await k.req('PUT', '/v1/identity/sso', {
        token: a.token,
        body: { issuer: idp.issuer, clientId: 'x', allowedDomains: [domain], defaultRole: 'platform_admin' },
      })
      t.equal(escalate.status, 404, 'a role the organisation cannot grant is refused')
      const b = await createTenantWithAdmin(k, `sso-b-${kind}`)
      const none = await start(b.orgId)
      t.equal(none.body.code, 'AUTH_ERR_SSO_NOT_CONFIGURED', "another organisation's provider is not used")
    })

    t.test('a new person signs in and becomes a member just in time, with the mapped role', async (t) => {
      const email = `alice@${domain}`
      idp.accounts.set('alice', { email, name: 'Alice', groups: ['staff', 'erp-admins'] })
      const s = await start()
      t.equal(s.status, 302)
      const auth = new URL(s.location)
      t.equal(auth.origin, idp.issuer, 'the browser goes to the provider')
      t.equal(auth.searchParams.get('code_challenge_method'), 'S256', 'with PKCE')
      t.ok(auth.searchParams.get('nonce') && auth.searchParams.get('state'), 'a nonce and a state')
      t.match(s.cookie, /^trellis_sso=/, 'and a cookie binding the sign-in to this browser')
      const back = await callback(await idp.authorize(s.location, 'alice'), s.cookie)
      t.equal(back.r.status, 302)
      t.ok(
        back.location.startsWith(`${PUBLIC_URL}/console/#sso_code=`),
        'back to the console with a code in the fragment',
      )
      const tokens = await k.req('POST', '/v1/auth/sso/exchange', { body: { code: back.code } })
      t.equal(tokens.status, 200)
      t.equal(tokens.body.org.id, a.orgId)
      t.equal(tokens.body.org.role, 'tenant_admin', 'the role comes from the groups claim')
      const me = await k.req('GET', '/v1/me', { token: tokens.body.accessToken })
      t.equal(me.status, 200)
      const again = await k.req('POST', '/v1/auth/sso/exchange', { body: { code: back.code } })
      t.equal(again.body.code, 'AUTH_ERR_SSO_CODE_INVALID', 'the code works once')
      const password = await k.req('POST', '/v1/auth/login', { body: { email, password: 'anything-at-all' } })
      t.equal(password.status, 401, 'the new account has no password')

      idp.accounts.set('bob', { email: `bob@${domain}` })
      const bob = await signIn('bob')
      const bobTokens = await k.req('POST', '/v1/auth/sso/exchange', { body: { code: bob.code } })
      t.equal(bobTokens.body.org.role, 'tenant_member', 'no mapped claim: the default role')
      const audit = await k.ownerSql(
        `select action from audit_log where tenant_id = ?::uuid and action in ('auth.sso.authenticated', 'membership.created')`,
        [a.orgId],
      )
      t.ok(audit.filter((r) => r.action === 'auth.sso.authenticated').length >= 2, 'sign-ins are audited')
    })

    t.test('attacks on the flow are refused', async (t) => {
      idp.accounts.set('carol', { email: `carol@${domain}` })
      idp.accounts.set('eve', { email: 'eve@elsewhere.test' })

      const outsider = await signIn('eve')
      t.equal(outsider.error, 'AUTH_ERR_SSO_FAILED', 'an address outside the allowed domains is refused')
      t.equal(await userCount('eve@elsewhere.test'), 0, 'and no account is created')

      idp.tamper = 'forged'
      const forged = await signIn('carol')
      idp.tamper = 'wrong-audience'
      const audience = await signIn('carol')
      idp.tamper = undefined
      t.equal(forged.error, 'AUTH_ERR_SSO_FAILED', 'an ID token signed with another key is refused')
      t.equal(audience.error, 'AUTH_ERR_SSO_FAILED', 'an ID token for another client is refused')
      t.equal(await userCount(`carol@${domain}`), 0, 'nobody was provisioned')

      // A code (and its ID token's nonce) from one sign-in cannot complete another.
      const first = await start()
      const second = await start()
      const returned = await idp.authorize(first.location, 'carol')
      const swapped = new URL(returned)
      swapped.searchParams.set('state', new URL(second.location).searchParams.get('state')!)
      const mixed = await callback(swapped, second.cookie)
      t.equal(mixed.error, 'AUTH_ERR_SSO_FAILED', "another sign-in's code and nonce are refused")

      const elsewhere = await start()
      const stolen = await callback(await idp.authorize(elsewhere.location, 'carol'), 'trellis_sso=another-browser')
      t.equal(stolen.error, 'AUTH_ERR_SSO_FAILED', 'a sign-in finished in another browser is refused')

      const honest = await start()
      const honestReturn = await idp.authorize(honest.location, 'carol')
      const ok = await callback(honestReturn, honest.cookie)
      t.ok(ok.code, 'the honest sign-in works')
      const replay = await callback(honestReturn, honest.cookie)
      t.equal(replay.r.status, 401, 'replaying the callback is refused: the state is spent')
      t.equal(replay.r.body.code, 'AUTH_ERR_SSO_FAILED')
      const failures = await k.ownerSql(
        `select count(*)::int as n from audit_log where tenant_id = ?::uuid and action = 'auth.sso.failed'`,
        [a.orgId],
      )
      t.ok(failures[0].n >= 5, 'failures are audited')
    })

    t.test('an SSO-only organisation refuses password sign-ins', async (t) => {
      t.equal((await configure({ ssoOnly: true })).status, 200)
      const login = await k.req('POST', '/v1/auth/login', { body: { email: a.email, password: a.password } })
      t.equal(login.status, 403)
      t.equal(login.body.code, 'AUTH_ERR_SSO_REQUIRED')
      const forgot = await k.req('POST', '/v1/auth/password/forgot', { body: { email: a.email } })
      t.equal(forgot.status, 202, 'asking for a reset answers as always')
      await k.kernel.ctx.mailer.idle()
      t.equal(smtp.to(a.email).length, 0, 'but no reset link is sent: a password is no use here')
      t.equal((await configure({ ssoOnly: false })).status, 200)
      t.equal((await k.req('POST', '/v1/auth/login', { body: { email: a.email, password: a.password } })).status, 200)
      await k.req('POST', '/v1/auth/password/forgot', { body: { email: a.email } })
      await k.kernel.ctx.mailer.idle()
      t.equal(smtp.to(a.email).length, 1, 'with passwords allowed again, the link is sent')
    })
  })
}
