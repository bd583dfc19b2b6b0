/**
 * Sessions fit for a browser: a client that sends `X-Trellis-Session: cookie` on sign-in (a
 * password, or the single sign-on hand-over) and refresh gets its refresh token in an `HttpOnly`,
 * `SameSite=Strict` cookie scoped to the refresh path (`Secure` when served over TLS) instead of
 * in the answer, so no script can read it. The
 * cookie-based refresh is guarded against cross-site requests by a double-submit token (a second,
 * readable cookie the client echoes in `X-Trellis-CSRF`) and by the Origin header when present.
 * Signing out clears both cookies. Clients that send no such header are unaffected.
 */
import { timingSafeEqual, randomBytes } from 'node:crypto'
import cookie from '@fastify/cookie'
import type { FastifyReply, FastifyRequest } from 'fastify'
import type { Api } from '../http/types.js'
import { AUTH } from '../errors.js'
import { toArray } from '../http/route-hooks.js'
import { REFRESH_TOKEN_TTL_DAYS } from './sessions.js'

export const SESSION_MODE_HEADER = 'x-trellis-session'
export const CSRF_HEADER = 'x-trellis-csrf'
export const REFRESH_COOKIE = 'trellis_refresh'
export const CSRF_COOKIE = 'trellis_csrf'
const REFRESH_PATH = '/v1/auth/refresh'
const LOGOUT_PATH = '/v1/auth/logout'
// Every answer that opens a session: the password sign-in, the single sign-on hand-over, a refresh.
const SIGN_IN_PATHS = new Set(['/v1/auth/login', '/v1/auth/sso/exchange', REFRESH_PATH])

const wantsCookie = (request: FastifyRequest) => request.headers[SESSION_MODE_HEADER] === 'cookie'

function sameText(a: string, b: string): boolean {
  const x = Buffer.from(a)
  const y = Buffer.from(b)
  return x.length === y.length && timingSafeEqual(x, y)
}

/** Whether a cross-site page could have sent this request: an Origin naming another host. */
function foreignOrigin(request: FastifyRequest): boolean {
  const origin = request.headers.origin
  if (!origin) return false
  try {
    return new URL(origin).host !== request.headers.host
  } catch {
    return true
  }
}

export async function registerRefreshCookie(app: Api, opts: { publicUrl?: string }): Promise<void> {
  await app.register(cookie)
  const secure = (request: FastifyRequest) => request.protocol === 'https' || !!opts.publicUrl?.startsWith('https://')
  const clear = (request: FastifyRequest, reply: FastifyReply) => {
    reply.clearCookie(REFRESH_COOKIE, {
      path: REFRESH_PATH,
      httpOnly: true,
      sameSite: 'strict',
      secure: secure(request),
    })
    reply.clearCookie(CSRF_COOKIE, { path: '/', sameSite: 'strict', secure: secure(request) })
  }

  // The cookie-based refresh: the token comes from the cookie, once the CSRF checks pass.
  const fromCookie = async (request: FastifyRequest) => {
    if (!wantsCookie(request)) return
    const token = request.cookies[REFRESH_COOKIE]
    const csrf = request.cookies[CSRF_COOKIE]
    const echoed = request.headers[CSRF_HEADER]
    if (!token || !csrf || typeof echoed !== 'string' || !sameText(csrf, echoed) || foreignOrigin(request))
      throw AUTH.INVALID_REFRESH_TOKEN()
    request.body = { refreshToken: token }
  }

  // Sign-in and refresh answers: the refresh token moves into the cookie; sign-out clears it.
  const intoCookie = async (request: FastifyRequest, reply: FastifyReply, payload: unknown) => {
    const url = request.routeOptions.url
    if (url === LOGOUT_PATH && reply.statusCode < 300) {
      clear(request, reply)
      return payload
    }
    if (!url || !SIGN_IN_PATHS.has(url) || !wantsCookie(request)) return payload
    if (reply.statusCode !== 200 || typeof payload !== 'string') {
      if (url === REFRESH_PATH && reply.statusCode === 401) clear(request, reply)
      return payload
    }
    const body = JSON.parse(payload) as { refreshToken?: string }
    // A replayed answer (Idempotency-Key) was stored without its token: the cookie set when it
    // was first given stays as it is.
    if (typeof body.refreshToken !== 'string') return payload
    const maxAge = REFRESH_TOKEN_TTL_DAYS * 86_400
    reply.setCookie(REFRESH_COOKIE, body.refreshToken, {
      path: REFRESH_PATH,
      httpOnly: true,
      sameSite: 'strict',
      secure: secure(request),
      maxAge,
    })
    reply.setCookie(CSRF_COOKIE, randomBytes(24).toString('base64url'), {
      path: '/',
      sameSite: 'strict',
      secure: secure(request),
      maxAge,
    })
    delete body.refreshToken
    return JSON.stringify(body)
  }

  // Only the routes these concern carry the hooks: every other request runs neither (two
  // promises and two hook passes each, on the kernel's busiest routes). `intoCookie` goes first
  // among the route's onSend hooks, so that what the Idempotency-Key hook stores for a replay is
  // the answer the browser got, without the refresh token.
  app.addHook('onRoute', (route) => {
    if (route.url === REFRESH_PATH) route.preValidation = [...toArray(route.preValidation), fromCookie] as never
    if (SIGN_IN_PATHS.has(route.url) || route.url === LOGOUT_PATH)
      route.onSend = [intoCookie, ...toArray(route.onSend)] as never
  })
}
