import type { FastifyReply, FastifyRequest } from 'fastify'
import { KRN } from '../errors.js'
import type { SharedState } from '../scale/shared-state.js'

interface Window {
  count: number
  resetAt: number
}

// Keys are tenants, and client addresses before sign-in: past this many, expired windows are
// dropped at once rather than at the next minute's sweep.
const MAX_KEYS = 100_000

/**
 * Per-tenant request limits (per client address before sign-in): a fixed window per key, in
 * this process, answered without waiting. Every response carries `x-ratelimit-limit`,
 * `-remaining` and `-reset`; one over the limit is a 429 `KRN_ERR_RATE_LIMITED` with
 * `retry-after`.
 *
 * With Redis (`shared`) the windows are Redis counters every process adds to, so N API
 * processes allow the limit once, not N times; while Redis does not answer, this process's own
 * windows count (and `/readyz` fails), so the limit holds per process rather than refusing every
 * caller or none. `scope` keeps limiters sharing one store apart (a route's own limit and the
 * API-wide one count separately).
 *
 * It replaced `@fastify/rate-limit`, whose hook awaits five promises per request: on the
 * kernel's cheapest routes that was the largest cost left after Fastify's own (see
 * docs/performance.md).
 */
export class RateLimiter {
  private readonly windows = new Map<string, Window>()
  private readonly sweep: NodeJS.Timeout

  constructor(
    private readonly max: number,
    private readonly windowMs = 60_000,
    private readonly shared?: SharedState,
    private readonly scope = '',
  ) {
    this.sweep = setInterval(() => this.prune(), windowMs)
    this.sweep.unref()
  }

  /** A preHandler hook. */
  readonly hook = (request: FastifyRequest, reply: FastifyReply, done: (err?: Error) => void): void => {
    const key = request.principal ? `org:${request.principal.orgId}` : `ip:${request.ip}`
    if (this.shared?.kind === 'redis') {
      this.shared.hit(`${this.scope}${key}`, this.windowMs).then(
        ({ count, resetMs }) => this.answer(reply, done, count, Math.max(1, Math.ceil(resetMs / 1000))),
        () => this.local(key, reply, done),
      )
      return
    }
    this.local(key, reply, done)
  }

  private local(key: string, reply: FastifyReply, done: (err?: Error) => void): void {
    const now = Date.now()
    let w = this.windows.get(key)
    if (!w || w.resetAt <= now) {
      if (!w && this.windows.size >= MAX_KEYS) this.prune()
      w = { count: 0, resetAt: now + this.windowMs }
      this.windows.set(key, w)
    }
    w.count++
    this.answer(reply, done, w.count, Math.ceil((w.resetAt - now) / 1000))
  }

  private answer(reply: FastifyReply, done: (err?: Error) => void, count: number, resetSeconds: number): void {
    reply.header('x-ratelimit-limit', this.max)
    reply.header('x-ratelimit-remaining', Math.max(0, this.max - count))
    reply.header('x-ratelimit-reset', resetSeconds)
    if (count <= this.max) return done()
    reply.header('retry-after', resetSeconds)
    done(KRN.RATE_LIMITED({ retryAfterSeconds: resetSeconds }))
  }

  private prune(): void {
    const now = Date.now()
    for (const [key, w] of this.windows) if (w.resetAt <= now) this.windows.delete(key)
  }

  close(): void {
    clearInterval(this.sweep)
  }
}
