import type { Api } from './types.js'
import type { KernelContext } from '../kernel-context.js'
import type { HttpMetrics } from '../observability/metrics.js'
import { KRN } from '../errors.js'

export function registerHealthRoutes(app: Api, k: KernelContext, metrics: HttpMetrics): void {
  const noLimit = { rateLimit: false as const }
  app.get(
    '/healthz',
    { config: noLimit, schema: { tags: ['operations'], summary: 'The process is up' } },
    async () => ({ status: 'ok' }),
  )
  app.get(
    '/readyz',
    { config: noLimit, schema: { tags: ['operations'], summary: 'The database is reachable' } },
    async () => {
      if (!(await k.db.ping())) throw KRN.DATABASE_UNAVAILABLE()
      return { status: 'ready' }
    },
  )
  app.get(
    '/metrics',
    { config: noLimit, schema: { tags: ['operations'], summary: 'Prometheus metrics', hide: true } },
    async (_req, reply) => {
      reply.type(metrics.registry.contentType)
      return metrics.registry.metrics()
    },
  )
  app.get(
    '/.well-known/jwks.json',
    { config: noLimit, schema: { tags: ['auth'], summary: 'Public keys that verify access tokens' } },
    async () => k.keys.jwks(),
  )
}
