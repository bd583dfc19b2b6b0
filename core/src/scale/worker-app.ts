import Fastify from 'fastify'
import type { Api } from '../http/types.js'
import type { KernelContext } from '../kernel-context.js'
import { registerHealthRoutes } from '../http/health-routes.js'
import { HttpMetrics } from '../observability/metrics.js'
import { sendProblem, toTrellisError } from '../http/problem.js'

/**
 * A worker's listener: `/healthz`, `/readyz` (database, Redis, not draining) and `/metrics`
 * (its jobs, queues and backlog) — for probes and scraping, never the API.
 */
export async function buildWorkerApp(k: KernelContext, draining: () => boolean): Promise<Api> {
  // No request log: probes every few seconds would drown the worker's own lines.
  const app = Fastify() as unknown as Api
  app.setErrorHandler((err, request, reply) => sendProblem(request, reply, toTrellisError(err)))
  registerHealthRoutes(app, { db: k.db, keys: k.keys, metrics: new HttpMetrics(), shared: k.shared, draining })
  await app.ready()
  return app
}
