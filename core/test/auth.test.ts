import t from 'tap'
import { SignJWT, generateKeyPair, base64url } from 'jose'
import { DB_KINDS, startTestKernel, createTenantWithAdmin, ADMIN } from './helpers/test-kernel.js'
import { AUDIENCE } from '../src/identity/tokens.js'

for (const kind of DB_KINDS) {
  t.test(`sign-in and tokens on ${kind}`, async (t) => {
    const k = await startTestKernel(t, kind, { loginLimits: { perAccount: 3, perIp: 1000, windowMs: 60_000 } })
    const a = await createTenantWithAdmin(k, `auth-${kind}`)

    t.test('login gives a short-lived token that /v1/me accepts', async (t) => {
      const r = await k.req('POST', '/v1/auth/login', { body: { email: a.email, password: a.password } })
      t.equal(r.status, 200)
      t.equal(r.body.tokenType, 'Bearer')
      t.equal(r.body.expiresIn, 900)
      t.match(r.body.refreshToken, /^trr_/)
      const me = await k.req('GET', '/v1/me', { token: r.body.accessToken })
      t.equal(me.status, 200)
      t.equal(me.body.user.email, a.email)
      t.equal(me.body.org.id, a.orgId)
      t.equal(me.body.org.kind, 'tenant')
      t.ok(me.body.permissions.includes('users.manage'))
      const session = await k.req('GET', '/v1/auth/session', { token: r.body.accessToken })
      t.equal(session.status, 200)
      t.same(session.body.org, { id: a.orgId, kind: 'tenant' })
      t.same(session.body.permissions, [...me.body.permissions].sort(), 'the same permissions, sorted')
      t.equal((await k.req('GET', '/v1/auth/session')).body.code, 'AUTH_ERR_UNAUTHENTICATED')
    })

    t.test('wrong password and unknown account get the same answer, and are audited', async (t) => {
      const wrong = await k.req('POST', '/v1/auth/login', { body: { email: a.email, password: 'not-the-password' } })
      const unknown = await k.req('POST', '/v1/auth/login', {
        body: { email: 'nobody@nowhere.test', password: 'whatever-password' },
      })
      t.equal(wrong.status, 401)
      t.equal(wrong.body.code, 'AUTH_ERR_INVALID_CREDENTIALS')
      t.equal(unknown.body.code, 'AUTH_ERR_INVALID_CREDENTIALS')
      t.equal(wrong.headers['content-type'], 'application/problem+json; charset=utf-8')
      const audit = await k.req('GET', '/v1/audit?action=auth.login.failed', { token: a.token })
      t.equal(audit.body.items.length, 1)
      t.equal(audit.body.items[0].data.email, a.email)
    })

    t.test('repeated failures lock the account for a while, even with the right password', async (t) => {
      for (let i = 0; i < 3; i++)
        await k.req('POST', '/v1/auth/login', { body: { email: ADMIN.email, password: `guess-${i}` } })
      const locked = await k.req('POST', '/v1/auth/login', { body: { email: ADMIN.email, password: ADMIN.password } })
      t.equal(locked.status, 429)
      t.equal(locked.body.code, 'AUTH_ERR_LOGIN_RATE_LIMITED')
    })

    t.test('refresh rotates; replaying a used refresh token ends the session family', async (t) => {
      const s = await k.login(a.email, a.password)
      const r1 = await k.req('POST', '/v1/auth/refresh', { body: { refreshToken: s.refreshToken } })
      t.equal(r1.status, 200)
      t.not(r1.body.refreshToken, s.refreshToken)
      const replay = await k.req('POST', '/v1/auth/refresh', { body: { refreshToken: s.refreshToken } })
      t.equal(replay.status, 401)
      t.equal(replay.body.code, 'AUTH_ERR_INVALID_REFRESH_TOKEN')
      // The legitimate newer token died with its family.
      const r2 = await k.req('POST', '/v1/auth/refresh', { body: { refreshToken: r1.body.refreshToken } })
      t.equal(r2.body.code, 'AUTH_ERR_INVALID_REFRESH_TOKEN')
      const audit = await k.req('GET', '/v1/audit?action=auth.refresh.reused', { token: a.token })
      t.equal(audit.body.items.length, 1)
      const garbage = await k.req('POST', '/v1/auth/refresh', { body: { refreshToken: "trr_' or 1=1 --" } })
      t.equal(garbage.body.code, 'AUTH_ERR_INVALID_REFRESH_TOKEN')
    })

    t.test('logout ends the session: access and refresh tokens stop working', async (t) => {
      const s = await k.login(a.email, a.password)
      t.equal((await k.req('POST', '/v1/auth/logout', { token: s.token })).status, 204)
      t.equal((await k.req('GET', '/v1/me', { token: s.token })).body.code, 'AUTH_ERR_INVALID_TOKEN')
      t.equal(
        (await k.req('POST', '/v1/auth/refresh', { body: { refreshToken: s.refreshToken } })).body.code,
        'AUTH_ERR_INVALID_REFRESH_TOKEN',
      )
    })

    t.test('forged and tampered tokens are refused', async (t) => {
      const userId = (await k.req('GET', '/v1/me', { token: a.token })).body.user.id
      const key = k.kernel.ctx.keys.current()!
      const issuer = k.kernel.ctx.config.publicUrl
      const claims = {
        org: a.orgId,
        okd: 'tenant',
        perms: ['users.manage', 'platform.admin'],
        sid: '00000000-0000-0000-0000-000000000001',
      }
      const sign = (mutate: (j: SignJWT) => SignJWT, signer: any = key.privateKey, kid = key.kid) =>
        mutate(
          new SignJWT(claims).setProtectedHeader({ alg: 'EdDSA', kid, typ: 'at+jwt' }).setSubject(userId).setIssuedAt(),
        ).sign(signer)
      const valid = (j: SignJWT) => j.setIssuer(issuer).setAudience(AUDIENCE).setExpirationTime('5m')
      const other = await generateKeyPair('EdDSA', { crv: 'Ed25519' })
      const cases: Array<[string, string, string]> = [
        ['signed by another key under our kid', await sign(valid, other.privateKey), 'AUTH_ERR_INVALID_TOKEN'],
        [
          'expired',
          await sign((j) =>
            j
              .setIssuer(issuer)
              .setAudience(AUDIENCE)
              .setExpirationTime(Math.floor(Date.now() / 1000) - 60),
          ),
          'AUTH_ERR_TOKEN_EXPIRED',
        ],
        [
          'wrong audience',
          await sign((j) => j.setIssuer(issuer).setAudience('someone-else').setExpirationTime('5m')),
          'AUTH_ERR_INVALID_TOKEN',
        ],
        [
          'wrong issuer',
          await sign((j) => j.setIssuer('https://evil.test').setAudience(AUDIENCE).setExpirationTime('5m')),
          'AUTH_ERR_INVALID_TOKEN',
        ],
        ['unknown kid', await sign(valid, other.privateKey, 'kdoesnotexist'), 'AUTH_ERR_INVALID_TOKEN'],
      ]
      const body = base64url.encode(
        JSON.stringify({
          ...claims,
          sub: userId,
          iss: issuer,
          aud: AUDIENCE,
          exp: Math.floor(Date.now() / 1000) + 300,
          iat: Math.floor(Date.now() / 1000),
        }),
      )
      cases.push([
        'alg none',
        `${base64url.encode(JSON.stringify({ alg: 'none', kid: key.kid, typ: 'at+jwt' }))}.${body}.`,
        'AUTH_ERR_INVALID_TOKEN',
      ])
      cases.push([
        'HS256 with the public key as secret',
        await new SignJWT({ ...claims })
          .setProtectedHeader({ alg: 'HS256', kid: key.kid, typ: 'at+jwt' })
          .setSubject('x')
          .setIssuer(issuer)
          .setAudience(AUDIENCE)
          .setExpirationTime('5m')
          .sign(new TextEncoder().encode(JSON.stringify(k.kernel.ctx.keys.jwks().keys[0]))),
        'AUTH_ERR_INVALID_TOKEN',
      ])
      const real = (await k.login(a.email, a.password)).token
      // Used once first, so the kernel already knows this signature when the edited copy arrives.
      t.equal((await k.req('GET', '/v1/me', { token: real })).status, 200)
      const [h, p, s] = real.split('.')
      const payload = JSON.parse(Buffer.from(p!, 'base64url').toString())
      payload.perms.push('platform.admin')
      cases.push([
        'payload edited after signing',
        `${h}.${base64url.encode(JSON.stringify(payload))}.${s}`,
        'AUTH_ERR_INVALID_TOKEN',
      ])
      cases.push(['not a JWT at all', 'definitely-not-a-jwt', 'AUTH_ERR_INVALID_TOKEN'])
      for (const [name, token, code] of cases) {
        const r = await k.req('GET', '/v1/me', { token })
        t.equal(r.status, 401, name)
        t.equal(r.body.code, code, name)
      }
      const check = await k.req('GET', '/v1/me', { token: await sign(valid) })
      t.equal(
        check.status,
        200,
        'the same construction with valid claims passes, so the cases above fail for their reason',
      )
    })

    t.test('validly signed tokens that live too long or carry claims of the wrong type are refused', async (t) => {
      const userId = (await k.req('GET', '/v1/me', { token: a.token })).body.user.id
      const key = k.kernel.ctx.keys.current()!
      const issuer = k.kernel.ctx.config.publicUrl
      const now = Math.floor(Date.now() / 1000)
      const good = {
        org: a.orgId,
        okd: 'tenant',
        perms: ['users.read'],
        sid: '00000000-0000-0000-0000-000000000002',
        sub: userId,
        iat: now,
        exp: now + 300,
      }
      // Signed with the kernel's own current key: only the claims are wrong.
      const forge = (claims: Record<string, unknown>) =>
        new SignJWT(claims)
          .setProtectedHeader({ alg: 'EdDSA', kid: key.kid, typ: 'at+jwt' })
          .setIssuer(issuer)
          .setAudience(AUDIENCE)
          .sign(key.privateKey!)
      const cases: Array<[string, Record<string, unknown>]> = [
        ['lives a year', { ...good, exp: now + 365 * 24 * 3600 }],
        ['lives a second longer than the kernel ever issues', { ...good, iat: now - 60, exp: now - 60 + 901 }],
        ['no exp', { ...good, exp: undefined }],
        ['no iat', { ...good, iat: undefined }],
        ['issued in the future, to stretch its life', { ...good, iat: now + 3600, exp: now + 3600 + 300 }],
        ['sub a number', { ...good, sub: 12345 }],
        ['sub an object', { ...good, sub: { id: userId } }],
        ['sub not an id', { ...good, sub: 'root' }],
        ['org not an id', { ...good, org: "x' or 1=1" }],
        ['okd unknown', { ...good, okd: 'platform-ish' }],
        ['perms not strings', { ...good, perms: [{ toString: 'platform.admin' }] }],
        ['perms a string', { ...good, perms: 'platform.admin' }],
        ['sid a number', { ...good, sid: 7 }],
      ]
      for (const [name, claims] of cases) {
        const r = await k.req('GET', '/v1/me', { token: await forge(claims) })
        t.equal(r.status, 401, name)
        t.equal(r.body.code, 'AUTH_ERR_INVALID_TOKEN', name)
      }
      const check = await k.req('GET', '/v1/me', { token: await forge(good) })
      t.equal(check.status, 200, 'the same construction with well-typed claims and the usual lifetime passes')
    })

    t.test('no credentials, or a malformed header', async (t) => {
      t.equal((await k.req('GET', '/v1/me')).body.code, 'AUTH_ERR_UNAUTHENTICATED')
      for (const authorization of [
        'Basic abc',
        'Bearer',
        'Bearer ',
        'Bearer two words',
        'Bearertoken',
        `Bearer ${a.token}\tx`,
      ]) {
        t.equal(
          (await k.req('GET', '/v1/me', { headers: { authorization } })).body.code,
          'KRN_ERR_VALIDATION_FAILED',
          authorization.slice(0, 20),
        )
      }
      t.equal(
        (await k.req('GET', '/v1/me', { headers: { authorization: `bearer   ${a.token}` } })).status,
        200,
        'the scheme is case-insensitive, spaces before the token are allowed',
      )
    })

    t.test('signing keys rotate without signing anybody out', async (t) => {
      const before = await k.login(a.email, a.password)
      await k.kernel.ctx.keys.rotate()
      t.equal((await k.req('GET', '/v1/me', { token: before.token })).status, 200, 'old token still verifies')
      const after = await k.login(a.email, a.password)
      t.not(
        JSON.parse(Buffer.from(after.token.split('.')[0]!, 'base64url').toString()).kid,
        JSON.parse(Buffer.from(before.token.split('.')[0]!, 'base64url').toString()).kid,
      )
      t.equal((await k.req('GET', '/v1/me', { token: after.token })).status, 200)
      const jwks = await k.req('GET', '/.well-known/jwks.json')
      t.equal(jwks.body.keys.length, 2)
      t.notOk(
        jwks.body.keys.some((j: any) => 'd' in j),
        'no private parts published',
      )
    })
  })
}
