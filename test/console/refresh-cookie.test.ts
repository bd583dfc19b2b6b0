/**
 * The browser session: with `X-Trellis-Session: cookie` the refresh token lives in an HttpOnly,
 * SameSite=Strict cookie scoped to the refresh path, never in the answer; the cookie-based
 * refresh needs the double-submit CSRF token and a same-site Origin; signing out clears it.
 */
import t from 'tap'
import { DB_KINDS, startTestKernel, createTenantWithAdmin } from '../../core/test/helpers/test-kernel.js'

type Cookies = Record<string, { value: string; attrs: string }>
function cookiesOf(setCookie: unknown): Cookies {
  const out: Cookies = {}
  for (const line of ([] as string[]).concat((setCookie as string[] | string | undefined) ?? [])) {
    const [pair, ...attrs] = line.split(';')
    const i = pair.indexOf('=')
    out[pair.slice(0, i).trim()] = { value: decodeURIComponent(pair.slice(i + 1)), attrs: attrs.join(';') }
  }
  return out
}

for (const kind of DB_KINDS) {
  t.test(`browser sessions on ${kind}`, async (t) => {
    const k = await startTestKernel(t, kind)
    const a = await createTenantWithAdmin(k, `cookie-${kind}`)
    const browser = { 'x-trellis-session': 'cookie', host: 'console.test' }

    const login = await k.req('POST', '/v1/auth/login', {
      body: { email: a.email, password: a.password },
      headers: browser,
    })
    t.equal(login.status, 200)
    t.notOk('refreshToken' in login.body, 'the answer carries no refresh token')
    t.ok(login.body.accessToken)
    const c = cookiesOf(login.headers['set-cookie'])
    t.match(c.trellis_refresh.value, /^trr_/)
    t.match(c.trellis_refresh.attrs, /HttpOnly/)
    t.match(c.trellis_refresh.attrs, /SameSite=Strict/)
    t.match(c.trellis_refresh.attrs, /Path=\/v1\/auth\/refresh/)
    t.notMatch(c.trellis_refresh.attrs, /Secure/, 'plain HTTP: no Secure flag')
    t.notMatch(c.trellis_csrf.attrs, /HttpOnly/, 'the CSRF token is readable by the page')
    const cookieHeader = `trellis_refresh=${c.trellis_refresh.value}; trellis_csrf=${c.trellis_csrf.value}`

    const noCsrf = await k.req('POST', '/v1/auth/refresh', { body: {}, headers: { ...browser, cookie: cookieHeader } })
    t.equal(noCsrf.status, 401, 'no CSRF header: refused')
    t.equal(noCsrf.body.code, 'AUTH_ERR_INVALID_REFRESH_TOKEN')
    const foreign = await k.req('POST', '/v1/auth/refresh', {
      body: {},
      headers: {
        ...browser,
        cookie: cookieHeader,
        'x-trellis-csrf': c.trellis_csrf.value,
        origin: 'https://evil.test',
      },
    })
    t.equal(foreign.status, 401, 'another site: refused')

    const refreshed = await k.req('POST', '/v1/auth/refresh', {
      body: {},
      headers: {
        ...browser,
        cookie: cookieHeader,
        'x-trellis-csrf': c.trellis_csrf.value,
        origin: 'http://console.test',
      },
    })
    t.equal(refreshed.status, 200)
    t.notOk('refreshToken' in refreshed.body)
    const c2 = cookiesOf(refreshed.headers['set-cookie'])
    t.not(c2.trellis_refresh.value, c.trellis_refresh.value, 'the refresh token rotates')
    t.equal((await k.req('GET', '/v1/me', { token: refreshed.body.accessToken })).status, 200)

    const out = await k.req('POST', '/v1/auth/logout', { token: refreshed.body.accessToken, headers: browser })
    t.equal(out.status, 204)
    const cleared = cookiesOf(out.headers['set-cookie'])
    t.equal(cleared.trellis_refresh.value, '', 'signing out clears the cookie')
    const after = await k.req('POST', '/v1/auth/refresh', {
      body: {},
      headers: {
        ...browser,
        cookie: `trellis_refresh=${c2.trellis_refresh.value}; trellis_csrf=${c2.trellis_csrf.value}`,
        'x-trellis-csrf': c2.trellis_csrf.value,
      },
    })
    t.equal(after.status, 401, 'the session ended everywhere: its refresh token no longer works')

    const plain = await k.req('POST', '/v1/auth/login', { body: { email: a.email, password: a.password } })
    t.match(plain.body.refreshToken, /^trr_/, 'API clients still get the refresh token in the answer')
    t.notOk(plain.headers['set-cookie'])
  })
}
