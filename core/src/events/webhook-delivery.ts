import type { Logger } from 'pino'
import type { TransactionSource } from '../db/database.js'
import type { SecretBox } from '../crypto/secret-box.js'
import type { EgressGuard } from '../egress/egress-guard.js'
import { egressRequest } from '../egress/http-client.js'
import type { EventMetrics } from '../observability/metrics.js'
import type { JobQueue } from './queue.js'
import { signWebhook } from './signing.js'
import { publicDeliveryError } from './public-error.js'
import type { AttemptRecorder } from './attempt-recorder.js'
import { deliverJob, webhookSecretAd, type ClaimedDelivery } from './delivery-types.js'

export interface DeliveryOptions {
  /** Delay before each webhook retry; after the last, the delivery is dead-lettered. */
  retryScheduleMs: number[]
  connectTimeoutMs?: number
  totalTimeoutMs?: number
}

/** How long a claimed attempt holds its delivery before the sweep may queue it again. */
export const leaseSeconds = (opts: DeliveryOptions) => ((opts.totalTimeoutMs ?? 15_000) + 5_000) / 1000

/**
 * A delivery waits while a delivery of an earlier event about the same subject to the same
 * endpoint is pending (`d` is the delivery row's alias). A redelivery (order_seq null) neither
 * waits nor holds anything back.
 */
export const NOT_BLOCKED = (d: string) =>
  `(${d}.order_seq is null or not exists (select 1 from webhook_deliveries p where p.endpoint_id = ${d}.endpoint_id and p.subject = ${d}.subject and p.status = 'pending' and p.order_seq < ${d}.order_seq))`

/** The JSON body of a delivery: the event, with its id and its number in its subject's stream. */
export function deliveryBody(d: ClaimedDelivery): string {
  return JSON.stringify({
    id: d.event_id,
    type: d.type,
    timestamp: new Date(d.time).toISOString(),
    source: d.source,
    subject: d.subject,
    sequence: d.seq === null ? null : Number(d.seq),
    tenantId: d.tenant_id,
    data: d.data,
  })
}

/** Webhook attempts: claim, send signed (Standard Webhooks), record, schedule the retry. */
export class WebhookDelivery {
  constructor(
    private readonly db: TransactionSource,
    private readonly queue: JobQueue,
    private readonly secrets: SecretBox,
    private readonly egress: EgressGuard,
    private readonly recorder: AttemptRecorder,
    private readonly metrics: EventMetrics,
    private readonly opts: DeliveryOptions,
    private readonly logger?: Logger,
  ) {}

  /** One attempt of one webhook delivery (a queued job). */
  async deliver(deliveryId: string, tenantId: string, attempt: number): Promise<void> {
    const [d] = await this.db.inOrg(
      tenantId,
      (tx) =>
        tx.sql<ClaimedDelivery>(
          `update webhook_deliveries d set attempts = d.attempts + 1, next_attempt_at = now() + make_interval(secs => ?::double precision), updated_at = now()
             from webhook_endpoints e, events v
            where d.id = ?::uuid and d.status = 'pending' and d.attempts = ? and e.id = d.endpoint_id and v.id = d.event_id and ${NOT_BLOCKED('d')}
           returning d.id, d.attempts, d.endpoint_id, e.url, e.status as endpoint_status, e.secret_enc, e.previous_secret_enc, e.previous_secret_expires_at,
                     v.id as event_id, v.type, v.source, v.subject, v.seq, v.time, v.data, v.tenant_id`,
          [leaseSeconds(this.opts), deliveryId, attempt - 1],
        ),
      'trellis_events',
    )
    // Delivered, dead-lettered, this attempt already ran, or an earlier delivery about its
    // subject is pending (which releases it when it finishes).
    if (!d) return
    await this.attempt(tenantId, d)
  }

  /** Sends a claimed delivery and records the outcome: delivered, retry later, or dead letter. */
  async attempt(tenantId: string, d: ClaimedDelivery): Promise<void> {
    if (d.endpoint_status !== 'active') {
      await this.recorder.record(tenantId, d, {
        status: 'failed',
        error: 'endpoint disabled',
        durationMs: 0,
        failureReason: 'endpoint_disabled',
      })
      return
    }
    const secrets = [this.secrets.open(d.secret_enc, webhookSecretAd(d.endpoint_id))]
    if (
      d.previous_secret_enc &&
      d.previous_secret_expires_at &&
      new Date(d.previous_secret_expires_at).getTime() > Date.now()
    )
      secrets.push(this.secrets.open(d.previous_secret_enc, webhookSecretAd(d.endpoint_id)))
    const body = deliveryBody(d)
    // The event's id: the same on every retry, redelivery and resend, and to every endpoint.
    const msgId = d.event_id
    const timestamp = Math.floor(Date.now() / 1000)
    const started = performance.now()
    let statusCode: number | null = null
    let response: string | null = null
    let error: string | null = null
    try {
      const res = await egressRequest(this.egress, {
        url: d.url,
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'user-agent': 'Trellis-Webhooks/1',
          'webhook-id': msgId,
          'webhook-timestamp': String(timestamp),
          'webhook-signature': signWebhook(secrets, msgId, timestamp, body),
        },
        body,
        connectTimeoutMs: this.opts.connectTimeoutMs ?? 5_000,
        totalTimeoutMs: this.opts.totalTimeoutMs ?? 15_000,
        maxResponseBytes: 1024,
      })
      statusCode = res.status
      response = res.body.replace(/\0/g, '')
    } catch (err) {
      error = publicDeliveryError(err)
      // The detail (resolver text, addresses) is for the operator only.
      this.logger?.info(
        { err, tenantId, deliveryId: d.id, endpointId: d.endpoint_id, eventId: d.event_id },
        `webhook attempt failed: ${error}`,
      )
    }
    const elapsed = performance.now() - started
    const durationMs = Math.round(elapsed)
    const ok = statusCode !== null && statusCode >= 200 && statusCode < 300
    const outcome = ok ? 'success' : statusCode !== null ? 'http_error' : 'network_error'
    this.metrics.attempts.inc({ outcome })
    this.metrics.attemptDuration.observe({ outcome }, elapsed / 1000)
    if (ok) return this.recorder.record(tenantId, d, { status: 'delivered', statusCode, response, durationMs })
    if (statusCode === 410)
      return this.recorder.record(tenantId, d, {
        status: 'failed',
        statusCode,
        response,
        durationMs,
        disableEndpoint: true,
        failureReason: 'gone',
      })
    const schedule = this.opts.retryScheduleMs
    if (d.attempts > schedule.length) {
      this.logger?.warn(
        { tenantId, deliveryId: d.id, endpointId: d.endpoint_id, eventId: d.event_id, statusCode, error },
        'webhook delivery dead-lettered after its last retry',
      )
      return this.recorder.record(tenantId, d, {
        status: 'failed',
        statusCode,
        response,
        error,
        durationMs,
        failureReason: 'dead_letter',
      })
    }
    // Exponential schedule with ±20 % jitter, so a recovering receiver is not hit by a thundering
    // herd. Jitter cannot reorder a subject: its later deliveries wait for this one.
    const delay = Math.round(schedule[d.attempts - 1]! * (0.8 + Math.random() * 0.4))
    await this.recorder.record(tenantId, d, {
      status: 'pending',
      statusCode,
      response,
      error,
      durationMs,
      retryInMs: delay,
    })
    this.metrics.retries.inc()
    await this.queue
      .add([{ ...deliverJob(d.id, tenantId, d.attempts + 1), delayMs: delay }])
      .catch((err) => this.logger?.debug({ err }, 'queueing a retry failed; the sweep retries'))
  }

  /** Queues the first attempt of deliveries that were waiting for an earlier one about their subject. */
  release(tenantId: string, deliveryIds: string[]): void {
    void this.queue
      .add(deliveryIds.map((id) => deliverJob(id, tenantId, 1)))
      .catch((err) => this.logger?.debug({ err }, 'queueing a released delivery failed; the sweep retries'))
  }
}
