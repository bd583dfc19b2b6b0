/**
 * Typed calls to the kernel's API (types generated from /openapi.json by scripts/openapi.ts).
 * The access token lives in memory only; the refresh token is an HttpOnly cookie the browser
 * sends to /v1/auth/refresh alone, with the CSRF token from the readable cookie echoed.
 */
import createClient, { type Middleware } from 'openapi-fetch'
import type { paths } from './schema'

let accessToken: string | undefined
let refreshing: Promise<boolean> | undefined

export const session = {
  set(token: string | undefined) {
    accessToken = token
  },
  get token() {
    return accessToken
  },
}

const csrf = () => /(?:^|; )trellis_csrf=([^;]+)/.exec(document.cookie)?.[1]

/** Trades the refresh cookie for a new access token; false when there is no live session. */
export function refresh(): Promise<boolean> {
  refreshing ??= (async () => {
    const token = csrf()
    if (!token) return false
    const res = await fetch('/v1/auth/refresh', {
      method: 'POST',
      credentials: 'same-origin',
      headers: { 'content-type': 'application/json', 'x-trellis-session': 'cookie', 'x-trellis-csrf': token },
      body: '{}',
    })
    if (!res.ok) return false
    accessToken = ((await res.json()) as { accessToken: string }).accessToken
    return true
  })().finally(() => {
    refreshing = undefined
  })
  return refreshing
}

const auth: Middleware = {
  onRequest({ request }) {
    if (accessToken) request.headers.set('authorization', `Bearer ${accessToken}`)
    return request
  },
}

export const api = createClient<paths>({ baseUrl: '' })
api.use(auth)

/** A problem answer as an Error (its title and detail), so queries fail with something to show. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly problem: { code?: string; title?: string; detail?: string },
  ) {
    super(problem.detail ?? problem.title ?? `HTTP ${status}`)
  }
}

/** Unwraps an openapi-fetch answer; a 401 refreshes once and retries. */
export async function call<T>(run: () => Promise<{ data?: T; error?: unknown; response: Response }>): Promise<T> {
  let r = await run()
  if (r.response.status === 401 && (await refresh())) r = await run()
  if (r.error !== undefined || !r.response.ok) throw new ApiError(r.response.status, (r.error ?? {}) as object)
  return r.data as T
}

/** A plugin's route (`/v1/x/<mount>/…`): outside the generated types, since plugins add them at install time. */
export async function pluginCall<T = unknown>(method: string, path: string, body?: unknown): Promise<T> {
  const send = () =>
    fetch(path, {
      method,
      headers: {
        ...(accessToken ? { authorization: `Bearer ${accessToken}` } : {}),
        ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
      },
      body: body !== undefined ? JSON.stringify(body) : undefined,
    })
  let res = await send()
  if (res.status === 401 && (await refresh())) res = await send()
  const data = res.status === 204 ? undefined : await res.json()
  if (!res.ok) throw new ApiError(res.status, data ?? {})
  return data as T
}

/** Signs in; a second factor goes with it when the account has one (`AUTH_ERR_MFA_REQUIRED` asks for it). */
export async function signIn(email: string, password: string, totpCode?: string): Promise<void> {
  const res = await fetch('/v1/auth/login', {
    method: 'POST',
    credentials: 'same-origin',
    headers: { 'content-type': 'application/json', 'x-trellis-session': 'cookie' },
    body: JSON.stringify({ email, password, ...(totpCode ? { totpCode } : {}) }),
  })
  const body = await res.json()
  if (!res.ok) throw new ApiError(res.status, body)
  accessToken = body.accessToken
}

/** Trades the one-time code the single sign-on redirect brought back for a session (the refresh token in the cookie). */
export async function exchangeSsoCode(code: string): Promise<void> {
  const res = await fetch('/v1/auth/sso/exchange', {
    method: 'POST',
    credentials: 'same-origin',
    headers: { 'content-type': 'application/json', 'x-trellis-session': 'cookie' },
    body: JSON.stringify({ code }),
  })
  const body = await res.json().catch(() => ({}))
  if (!res.ok) throw new ApiError(res.status, body)
  accessToken = body.accessToken
}

export async function signOut(): Promise<void> {
  if (accessToken)
    await fetch('/v1/auth/logout', {
      method: 'POST',
      headers: { authorization: `Bearer ${accessToken}`, 'x-trellis-session': 'cookie' },
    })
  accessToken = undefined
}

/** A signed-out call (password reset): the problem as an ApiError, nothing on success. */
export async function publicPost(path: string, body: unknown): Promise<void> {
  const res = await fetch(path, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  })
  if (!res.ok) throw new ApiError(res.status, await res.json().catch(() => ({})))
}
