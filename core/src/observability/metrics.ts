import { Registry, Histogram, Counter, Gauge, collectDefaultMetrics } from 'prom-client'
import type { FastifyReply, FastifyRequest } from 'fastify'
import { workflowMetrics } from '../workflows/metrics.js'
import { BoundHistogram } from './bound-histogram.js'
import { processMetrics } from '../scale/process-metrics.js'

/** Prometheus metrics of the HTTP API, plus the process's default metrics and the event pipeline's. */
export class HttpMetrics {
  readonly registry = new Registry()
  private readonly duration = new BoundHistogram(
    'trellis_http_request_duration_seconds',
    'HTTP request duration by route, method and status',
    [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
  )
  private readonly errors = new Counter({
    name: 'trellis_http_errors_total',
    help: 'HTTP responses with status >= 400 by route and status',
    labelNames: ['route', 'status'],
    registers: [this.registry],
  })
  private readonly denied = new Counter({
    name: 'trellis_http_denied_total',
    help: 'Requests refused as unauthenticated (401) or forbidden (403), by error code: a rise is someone probing',
    labelNames: ['code'],
    registers: [this.registry],
  })
  constructor(events: EventMetrics = eventMetrics) {
    collectDefaultMetrics({ register: this.registry, prefix: 'trellis_' })
    this.registry.registerMetric(this.duration.asMetric())
    for (const m of events.metrics()) this.registry.registerMetric(m)
    for (const m of workflowMetrics.metrics()) this.registry.registerMetric(m)
    for (const m of processMetrics.metrics()) this.registry.registerMetric(m)
  }

  /** Records a finished request; Fastify has already timed it (reply.elapsedTime). */
  finish(request: FastifyRequest, reply: FastifyReply): void {
    const route = request.routeOptions.url ?? 'unmatched'
    // Label sets are few (route × method × status): each series is kept, found by one string.
    const s = this.duration.series(`${request.method} ${route} ${reply.statusCode}`, () => ({
      method: request.method,
      route,
      status: String(reply.statusCode),
    }))
    s.observe(reply.elapsedTime / 1000)
    if (reply.statusCode >= 400) this.errors.inc({ route, status: String(reply.statusCode) })
  }

  /** Records a request refused with 401 or 403, by its error code. */
  deniedRequest(code: string): void {
    this.denied.inc({ code })
  }
}

/** What the outbox and the delivery table hold right now (read when /metrics is scraped). */
export interface EventBacklog {
  /** Committed events not yet fanned out. */
  outbox: number
  /** Age of the oldest of them, in seconds (0 when none). */
  oldestSeconds: number
  /** Webhook deliveries waiting for an attempt (first or retry). */
  pendingDeliveries: number
}

/**
 * Prometheus metrics of the event pipeline: every webhook attempt and its outcome, final
 * outcomes of deliveries (delivered or failed for good, and why), retries, dead letters, the
 * lag from an event's commit to its fan-out, and the outbox backlog.
 *
 * No tenant or endpoint label: a label per tenant would be one series per customer. Which
 * tenant's deliveries fail is in the delivery log (`/v1/webhooks/deliveries?status=failed`)
 * and in `kernel.webhook.delivery_failed` events.
 */
export class EventMetrics {
  readonly registry = new Registry()
  private readonly registers = [this.registry]
  readonly attempts = new Counter({
    name: 'trellis_webhook_attempts_total',
    help: 'Webhook delivery attempts by outcome: success (2xx), http_error (any other status), network_error (no answer: refused, timeout, egress denied)',
    labelNames: ['outcome'],
    registers: this.registers,
  })
  readonly attemptDuration = new Histogram({
    name: 'trellis_webhook_attempt_duration_seconds',
    help: 'Duration of webhook delivery attempts by outcome',
    labelNames: ['outcome'],
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 15],
    registers: this.registers,
  })
  readonly deliveries = new Counter({
    name: 'trellis_webhook_deliveries_total',
    help: 'Webhook deliveries that finished, by outcome: delivered, dead_letter (the last retry failed), gone (410, endpoint disabled), endpoint_disabled',
    labelNames: ['outcome'],
    registers: this.registers,
  })
  readonly retries = new Counter({
    name: 'trellis_webhook_retries_scheduled_total',
    help: 'Webhook attempts that failed and were scheduled to run again',
    registers: this.registers,
  })
  readonly deadLetters = new Counter({
    name: 'trellis_webhook_dead_letters_total',
    help: 'Webhook deliveries that failed for good, by reason (dead_letter, gone, endpoint_disabled)',
    labelNames: ['reason'],
    registers: this.registers,
  })
  readonly fannedOut = new Counter({
    name: 'trellis_events_fanned_out_total',
    help: 'Events fanned out to their subscribers (marked processed)',
    registers: this.registers,
  })
  readonly dispatchLag = new Histogram({
    name: 'trellis_events_dispatch_lag_seconds',
    help: 'Time from an event being written to the outbox to its fan-out',
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 15, 60, 300],
    registers: this.registers,
  })
  readonly emitted = new Counter({
    name: 'trellis_webhook_delivery_failed_events_total',
    help: 'kernel.webhook.delivery_failed events written',
    registers: this.registers,
  })

  private source: (() => Promise<EventBacklog>) | undefined
  private cached: { at: number; value: Promise<EventBacklog | undefined> } | undefined
  private backlog(): Promise<EventBacklog | undefined> {
    // One query serves the three gauges of one scrape.
    if (!this.cached || Date.now() - this.cached.at > 500)
      this.cached = { at: Date.now(), value: (this.source?.() ?? Promise.resolve(undefined)).catch(() => undefined) }
    return this.cached.value
  }
  private gauge(name: string, help: string, pick: (b: EventBacklog) => number): Gauge {
    const self = this
    return new Gauge({
      name,
      help,
      registers: this.registers,
      async collect() {
        const b = await self.backlog()
        if (b) this.set(pick(b))
      },
    })
  }
  readonly outbox = this.gauge('trellis_events_outbox_backlog', 'Committed events not yet fanned out', (b) => b.outbox)
  readonly oldest = this.gauge(
    'trellis_events_outbox_oldest_seconds',
    'Age of the oldest event not yet fanned out (0 when none)',
    (b) => b.oldestSeconds,
  )
  readonly pending = this.gauge(
    'trellis_webhook_deliveries_pending',
    'Webhook deliveries waiting for an attempt',
    (b) => b.pendingDeliveries,
  )

  constructor() {
    for (const outcome of ['success', 'http_error', 'network_error']) this.attempts.inc({ outcome }, 0)
    for (const outcome of ['delivered', 'dead_letter', 'gone', 'endpoint_disabled']) this.deliveries.inc({ outcome }, 0)
    for (const reason of ['dead_letter', 'gone', 'endpoint_disabled']) this.deadLetters.inc({ reason }, 0)
  }

  /** Where the backlog gauges read from; returns a function that unsets it (if still this one). */
  setBacklogSource(fn: () => Promise<EventBacklog>): () => void {
    this.source = fn
    this.cached = undefined
    return () => {
      if (this.source === fn) this.source = undefined
      this.cached = undefined
    }
  }

  /** Every metric, for exposing in another registry. */
  metrics(): Array<Counter | Histogram | Gauge> {
    return [
      this.attempts,
      this.attemptDuration,
      this.deliveries,
      this.retries,
      this.deadLetters,
      this.fannedOut,
      this.dispatchLag,
      this.emitted,
      this.outbox,
      this.oldest,
      this.pending,
    ]
  }
}

/**
 * The process's event metrics. Prometheus scrapes a process, and the HTTP API's registry
 * (what /metrics serves) includes them; the event system records into them. (Passing the
 * event system's own instance to HttpMetrics from app.ts would make this unnecessary.)
 */
export const eventMetrics = new EventMetrics()
