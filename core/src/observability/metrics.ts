import { Registry, Histogram, Counter, collectDefaultMetrics } from 'prom-client'
import type { FastifyReply, FastifyRequest } from 'fastify'

/** Prometheus metrics of the HTTP API, plus the process's default metrics. */
export class HttpMetrics {
  readonly registry = new Registry()
  private readonly duration = new Histogram({
    name: 'trellis_http_request_duration_seconds',
    help: 'HTTP request duration by route, method and status',
    labelNames: ['method', 'route', 'status'],
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [this.registry],
  })
  private readonly errors = new Counter({
    name: 'trellis_http_errors_total',
    help: 'HTTP responses with status >= 400 by route and status',
    labelNames: ['route', 'status'],
    registers: [this.registry],
  })
  constructor() {
    collectDefaultMetrics({ register: this.registry, prefix: 'trellis_' })
  }

  // Label sets are few (route × method × status): keep each bound series instead of hashing
  // the labels on every request.
  private readonly series = new Map<string, { observe(v: number): void }>()

  /** Records a finished request; Fastify has already timed it (reply.elapsedTime). */
  finish(request: FastifyRequest, reply: FastifyReply): void {
    const route = request.routeOptions.url ?? 'unmatched'
    const key = `${request.method} ${route} ${reply.statusCode}`
    let s = this.series.get(key)
    if (!s) {
      s = this.duration.labels(request.method, route, String(reply.statusCode))
      this.series.set(key, s)
    }
    s.observe(reply.elapsedTime / 1000)
    if (reply.statusCode >= 400) this.errors.inc({ route, status: String(reply.statusCode) })
  }
}
