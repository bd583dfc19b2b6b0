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
  private readonly started = new WeakMap<FastifyRequest, number>()

  constructor() {
    collectDefaultMetrics({ register: this.registry, prefix: 'trellis_' })
  }

  start(request: FastifyRequest): void {
    this.started.set(request, performance.now())
  }

  finish(request: FastifyRequest, reply: FastifyReply): void {
    const t0 = this.started.get(request)
    if (t0 === undefined) return
    const route = request.routeOptions.url ?? 'unmatched'
    const status = String(reply.statusCode)
    this.duration.observe({ method: request.method, route, status }, (performance.now() - t0) / 1000)
    if (reply.statusCode >= 400) this.errors.inc({ route, status })
  }
}
