import { KRN } from '../errors.js'

/** Operator-settable limits of the HTTP server (see docs/operations.md). */
export interface HttpLimits {
  /** The whole request, headers and body, must arrive within this (`requestTimeout`). */
  requestTimeoutMs: number
  /** The request headers must arrive within this (Node's `headersTimeout`). */
  headersTimeoutMs: number
  /** A connection on which nothing moves for this long is closed (`connectionTimeout`). */
  idleTimeoutMs: number
  /** An idle kept-alive connection is closed after this (`keepAliveTimeout`). */
  keepAliveTimeoutMs: number
  /** Sign-ins and token refreshes per minute per client address (per tenant once signed in). */
  authRateLimitPerMinute: number
}

export const DEFAULT_HTTP_LIMITS: HttpLimits = {
  requestTimeoutMs: 120_000,
  headersTimeoutMs: 30_000,
  idleTimeoutMs: 120_000,
  // Above the 60 s idle timeout of common load balancers, so they never reuse a closed connection.
  keepAliveTimeoutMs: 72_000,
  authRateLimitPerMinute: 120,
}

const VARIABLES: Record<keyof HttpLimits, string> = {
  requestTimeoutMs: 'TRELLIS_HTTP_REQUEST_TIMEOUT_MS',
  headersTimeoutMs: 'TRELLIS_HTTP_HEADERS_TIMEOUT_MS',
  idleTimeoutMs: 'TRELLIS_HTTP_IDLE_TIMEOUT_MS',
  keepAliveTimeoutMs: 'TRELLIS_HTTP_KEEP_ALIVE_TIMEOUT_MS',
  authRateLimitPerMinute: 'TRELLIS_AUTH_RATE_LIMIT_PER_MINUTE',
}

/** Reads the HTTP limits from the environment; each is a whole number from 1 up. */
export function parseHttpLimits(env: NodeJS.ProcessEnv): HttpLimits {
  const limits = { ...DEFAULT_HTTP_LIMITS }
  for (const [field, variable] of Object.entries(VARIABLES) as Array<[keyof HttpLimits, string]>) {
    const value = env[variable]?.trim()
    if (value === undefined || value === '') continue
    if (!/^\d{1,10}$/.test(value) || Number(value) < 1)
      throw KRN.CONFIG_INVALID({ variable, reason: 'must be a whole number from 1 up' })
    limits[field] = Number(value)
  }
  if (limits.headersTimeoutMs > limits.requestTimeoutMs)
    throw KRN.CONFIG_INVALID({
      variable: VARIABLES.headersTimeoutMs,
      reason: 'must not exceed TRELLIS_HTTP_REQUEST_TIMEOUT_MS',
    })
  return limits
}
