import type { Api } from './types.js'
import type { Database } from '../db/database.js'
import type { SigningKeys } from '../identity/signing-keys.js'
import type { HttpMetrics } from '../observability/metrics.js'
import { KRN } from '../errors.js'

export interface HealthRouteDeps {
  db: Pick<Database, 'ping' | 'pendingMigrations'>
  keys: Pick<SigningKeys, 'jwks'>
  metrics: HttpMetrics
  /** Redis, when the processes share state there: not ready while it does not answer. */
  shared?: { kind: string; ping(): Promise<boolean> }
  /** True once the process drains (SIGTERM): not ready, so load balancers stop sending. */
  draining?: () => boolean
}

export function registerHealthRoutes(app: Api, deps: HealthRouteDeps): void {
  const { metrics } = deps
  const noLimit = { rateLimit: false as const }
  app.get(
    '/healthz',
    { config: noLimit, schema: { tags: ['operations'], summary: 'The process is up' } },
    async () => ({ status: 'ok' }),
  )
  app.get(
    '/readyz',
    {
      config: noLimit,
      schema: {
        tags: ['operations'],
        summary:
          'The database (and Redis, when configured) is reachable, its schema is not behind the code and the process is not draining (503 otherwise)',
      },
    },
    async () => {
      if (deps.draining?.()) throw KRN.DRAINING()
      if (!(await deps.db.ping())) throw KRN.DATABASE_UNAVAILABLE()
      if (deps.shared?.kind === 'redis' && !(await deps.shared.ping())) throw KRN.REDIS_UNAVAILABLE()
      const pending = await deps.db.pendingMigrations().catch(() => {
        throw KRN.DATABASE_UNAVAILABLE()
      })
      if (pending.length) throw KRN.SCHEMA_BEHIND({ pending })
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
    async () => deps.keys.jwks(),
  )
}
