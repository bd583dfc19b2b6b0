/**
 * A browser sign-in sent with an Idempotency-Key (a signed-in caller retrying it): the answer
 * that is stored for a replay is the one the browser got — without the refresh token, which
 * went into the HttpOnly cookie. A replay of it, with or without `X-Trellis-Session: cookie`,
 * never shows the refresh token in its body, and a replay in cookie mode leaves the browser's
 * cookie as it was.
 */
import t from 'tap'
import { DB_KINDS, startTestKernel, createTenantWithAdmin } from '../../core/test/helpers/test-kernel.js'

for (const kind of DB_KINDS) {
  t.test(`a replayed browser sign-in on ${kind}`, async (t) => {
    const k = await startTestKernel(t, kind)
    const a = await createTenantWithAdmin(k, `cookie-idem-${kind}`)
    const retried = { host: 'console.test', 'idempotency-key': `sign-in-${kind}` }
    const browser = { ...retried, 'x-trellis-session': 'cookie' }
    const body = { email: a.email, password: a.password }

    const first = await k.req('POST', '/v1/auth/login', { token: a.token, body, headers: browser })
    t.equal(first.status, 200)
    t.notOk('refreshToken' in first.body, 'the answer carries no refresh token')
    t.match(String(first.headers['set-cookie']), /trellis_refresh=trr_/, 'the refresh token went into the cookie')

    // The same request (key, route and body) from a client not in cookie mode.
    const replay = await k.req('POST', '/v1/auth/login', { token: a.token, body, headers: retried })
    t.equal(replay.status, 200)
    t.equal(replay.headers['idempotent-replayed'], 'true', 'the stored answer is replayed')
    t.notOk('refreshToken' in replay.body, 'the replay shows no refresh token either')
    t.same(replay.body, first.body, 'the replay is the answer the browser got')

    // The browser retrying in cookie mode keeps the cookie it was given: the replay sets none.
    const again = await k.req('POST', '/v1/auth/login', { token: a.token, body, headers: browser })
    t.equal(again.status, 200)
    t.equal(again.headers['idempotent-replayed'], 'true')
    t.notMatch(String(again.headers['set-cookie'] ?? ''), /trellis_refresh=;/, 'the refresh cookie is not emptied')
    t.notOk('refreshToken' in again.body)
  })
}
