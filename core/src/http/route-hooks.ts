import type { FastifyReply, FastifyRequest, RouteOptions } from 'fastify'
import type { Api } from './types.js'
import type { SharedState } from '../scale/shared-state.js'
import { isGuard, requirePermission } from './guards.js'
import { RateLimiter } from './rate-limit.js'

/** Per-route settings a route declares in its `config`. */
export interface RouteLimitConfig {
  /**
   * `false`: the route is not counted at all (health checks, metrics). An object: the route has
   * its own limit as well, counted per tenant once signed in and per client address before.
   */
  rateLimit?: false | { max: number; timeWindow: number }
  /** The response holds credentials (sign-in, refresh): `Cache-Control: no-store`. */
  noStore?: boolean
}

declare module 'fastify' {
  interface FastifyContextConfig extends RouteLimitConfig {}
}

type Hook = (request: FastifyRequest, reply: FastifyReply, done: (err?: Error) => void) => void

const ARRANGED = Symbol.for('trellis.http.arranged')

/** Sets the headers that keep a response holding a caller's data out of shared caches. */
export function markPrivate(reply: FastifyReply): void {
  reply.header('cache-control', 'no-store')
  reply.header('vary', 'Authorization')
}

const noStore: Hook = (_request, reply, done) => {
  markPrivate(reply)
  done()
}

/**
 * Arranges each route's hooks so that who may call it is settled before anything about the
 * request's body is: the caller is authenticated by the API's first `onRequest` hook; then,
 * still in `onRequest` — before Fastify reads the body, parses it and validates it against the
 * schema — the route's own rate limit and its permission guards run. A route under /v1 that
 * does not declare itself public (`schema.security: []`) and names no guard requires an
 * authenticated caller. Returns the per-route limiters (to be closed with the API); with Redis
 * (`shared`) a route's window is one for every process.
 */
export function arrangeRouteHooks(app: Api, shared?: SharedState): { close(): void } {
  const limiters: RateLimiter[] = []
  app.addHook('onRoute', (route: RouteOptions & { [ARRANGED]?: true }) => {
    if (route[ARRANGED]) return
    route[ARRANGED] = true
    const preHandler = toArray(route.preHandler)
    const guards: Hook[] = preHandler.filter(isGuard)
    const isPublic =
      !route.url.startsWith('/v1/') || (route.schema as { security?: unknown[] } | undefined)?.security?.length === 0
    if (guards.length === 0 && !isPublic) guards.push(requirePermission())
    const first: Hook[] = []
    const config = route.config as RouteLimitConfig | undefined
    if (config?.noStore) first.push(noStore)
    if (config?.rateLimit) {
      const scope = `route:${[route.method].flat().join(',')} ${route.url}:`
      const limiter = new RateLimiter(config.rateLimit.max, config.rateLimit.timeWindow, shared, scope)
      limiters.push(limiter)
      first.push(limiter.hook)
    }
    route.onRequest = [...toArray(route.onRequest), ...first, ...guards] as RouteOptions['onRequest']
    route.preHandler = preHandler.filter((h) => !isGuard(h)) as RouteOptions['preHandler']
  })
  return {
    close() {
      for (const l of limiters) l.close()
    },
  }
}

/** A hook option (one hook, a list, or none) as a list. */
export function toArray<T>(v: T | T[] | undefined): T[] {
  return v === undefined ? [] : Array.isArray(v) ? v : [v]
}
