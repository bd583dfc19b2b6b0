import { v7 as uuidv7 } from 'uuid'
import type { Logger } from 'pino'
import { sqlArray, type Database, type Tx } from '../db/database.js'
import type { SecretBox } from '../crypto/secret-box.js'
import { EgressGuard } from '../egress/egress-guard.js'
import { egressRequest } from '../egress/http-client.js'
import { matchesAny, type TrellisEvent } from './catalogue.js'
import type { JobQueue, QueueJob, RunningJob } from './queue.js'
import type { KernelEventHandler, PluginEventSink } from './subscribers.js'
import { signWebhook } from './signing.js'

const BATCH = 500

export interface EventSystemOptions {
  /** Delay before each webhook retry; after the last, the delivery is dead-lettered. */
  retryScheduleMs: number[]
  /** How often the safety-net sweep runs (outbox rows nobody woke the dispatcher for, lost jobs). */
  sweepMs?: number
  /** A dispatched event or a due delivery still not done after this long is queued again. */
  staleMs?: number
  /** Run the queue's workers in this process. */
  worker?: boolean
  concurrency?: number
  connectTimeoutMs?: number
  totalTimeoutMs?: number
}

interface EventRow {
  id: string
  tenant_id: string
  type: string
  source: string
  subject: string
  time: Date | string
  data: Record<string, unknown>
  processed_at: Date | null
  earlier: boolean
}

interface ClaimedDelivery {
  id: string
  attempts: number
  endpoint_id: string
  url: string
  endpoint_status: string
  secret_enc: string
  previous_secret_enc: string | null
  previous_secret_expires_at: Date | null
  event_id: string
  type: string
  source: string
  subject: string
  time: Date | string
  data: Record<string, unknown>
  tenant_id: string
}

/** An event is waiting for an earlier one about the same subject: its job runs again shortly. */
class WaitForEarlier extends Error {}

function toEvent(r: Pick<EventRow, 'id' | 'tenant_id' | 'type' | 'source' | 'subject' | 'time' | 'data'>): TrellisEvent {
  return { id: r.id, tenantId: r.tenant_id, type: r.type, source: r.source, subject: r.subject, time: new Date(r.time).toISOString(), data: r.data }
}

/** The patterns an endpoint may have subscribed with that match `type`: `*`, the type, and each `prefix.*`. */
function patternsMatching(type: string): string[] {
  const parts = type.split('.')
  const out = ['*', type]
  for (let i = 1; i < parts.length; i++) out.push(`${parts.slice(0, i).join('.')}.*`)
  return out
}

export const webhookSecretAd = (endpointId: string) => `webhook-secret:${endpointId}`

/**
 * The event pipeline: outbox → queue → subscribers. The dispatcher moves committed outbox rows
 * to the queue (woken after each commit that emitted, and by a periodic sweep); a worker fans
 * each event out, in order per subject, to in-process handlers, plugin subscribers and the
 * tenant's webhook endpoints; each webhook delivery is its own job with retries.
 * PostgreSQL is the source of truth throughout: the sweep re-queues any event or delivery whose
 * job was lost, and handlers are idempotent, so delivery is at least once.
 */
export class EventSystem {
  private handlers: Array<{ patterns: string[]; fn: KernelEventHandler }> = []
  private sink: PluginEventSink | undefined
  private again = false
  private running: Promise<void> | undefined
  private scheduled = false
  private sweepTimer: NodeJS.Timeout | undefined
  private closed = false
  private readonly staleMs: number

  constructor(
    private readonly db: Database,
    readonly queue: JobQueue,
    private readonly secrets: SecretBox,
    readonly egress: EgressGuard,
    private readonly opts: EventSystemOptions,
    private readonly logger?: Logger,
  ) {
    this.staleMs = opts.staleMs ?? 30_000
  }

  /** Runs `fn` (in this process, after commit, at least once) for events matching `patterns`. */
  on(patterns: string | string[], fn: KernelEventHandler): void {
    this.handlers.push({ patterns: Array.isArray(patterns) ? patterns : [patterns], fn })
  }

  /** Where plugin subscribers are reached (the plugin host). */
  setPluginSink(sink: PluginEventSink | undefined): void {
    this.sink = sink
  }

  start(): void {
    if (this.opts.worker ?? true) this.queue.work((job) => this.runJob(job), { concurrency: this.opts.concurrency ?? 16 })
    this.sweepTimer = setInterval(() => void this.sweep(), this.opts.sweepMs ?? 1000)
    this.sweepTimer.unref()
    this.nudge()
  }

  /** Wakes the dispatcher: called after a transaction that emitted has committed. */
  nudge(): void {
    if (this.closed) return
    this.again = true
    if (this.scheduled || this.running) return
    this.scheduled = true
    setImmediate(() => {
      this.scheduled = false
      void this.pump()
    })
  }

  private async pump(): Promise<void> {
    if (this.running || this.closed) return
    this.running = (async () => {
      while (this.again && !this.closed) {
        this.again = false
        try {
          while ((await this.dispatchOnce()) === BATCH && !this.closed);
        } catch (err) {
          // Redis away, database busy: the rows stay in the outbox and the sweep tries again.
          this.logger?.warn({ err }, 'dispatching events failed; the sweep retries')
        }
      }
    })()
    try {
      await this.running
    } finally {
      this.running = undefined
    }
  }

  /** Moves up to one batch of outbox rows to the queue; returns how many. */
  async dispatchOnce(): Promise<number> {
    return this.db.inOrg(
      null,
      async (tx) => {
        const rows = await tx.sql<{ id: string; tenant_id: string }>(
          `select id, tenant_id from events where processed_at is null and (dispatched_at is null or dispatched_at < now() - make_interval(secs => ?::double precision))
            order by id limit ${BATCH} for update skip locked`,
          [this.staleMs / 1000],
        )
        if (rows.length === 0) return 0
        await this.queue.add(
          rows.map((r) => ({ id: `evt_${r.id}`, name: 'event', data: { eventId: r.id, tenantId: r.tenant_id } })),
          tx,
        )
        await tx.sql('update events set dispatched_at = now() where id = any(?::uuid[])', [sqlArray(rows.map((r) => r.id))])
        return rows.length
      },
      'trellis_events',
    )
  }

  /** The safety net: undispatched or lost events, and due deliveries whose job was lost. */
  async sweep(): Promise<void> {
    if (this.closed) return
    this.nudge()
    try {
      const due = await this.db.inOrg(
        null,
        (tx) =>
          tx.sql<{ id: string; tenant_id: string; attempts: number }>(
            `select id, tenant_id, attempts from webhook_deliveries where status = 'pending' and next_attempt_at < now() - make_interval(secs => ?::double precision) order by next_attempt_at limit ${BATCH}`,
            [this.staleMs / 1000],
          ),
        'trellis_events',
      )
      if (due.length) await this.queue.add(due.map((d) => deliverJob(d.id, d.tenant_id, d.attempts + 1)))
    } catch (err) {
      this.logger?.warn({ err }, 'sweeping deliveries failed')
    }
  }

  private async runJob(job: RunningJob): Promise<void> {
    if (job.name === 'event') return this.fanOut(job.data.eventId as string, job.data.tenantId as string)
    if (job.name === 'deliver') return this.deliver(job.data.deliveryId as string, job.data.tenantId as string, job.data.attempt as number)
    this.logger?.warn({ job: job.id }, 'unknown job dropped')
  }

  /** One event to its subscribers: kernel handlers, plugins, and delivery rows for each matching endpoint. */
  async fanOut(eventId: string, tenantId: string): Promise<void> {
    const [row] = await this.db.inOrg(
      tenantId,
      (tx) =>
        tx.sql<EventRow>(
          `select e.*, exists (select 1 from events p where p.tenant_id = e.tenant_id and p.subject = e.subject and p.id < e.id and p.processed_at is null) as earlier
             from events e where e.id = ?::uuid and e.tenant_id = ?::uuid`,
          [eventId, tenantId],
        ),
      'trellis_events',
    )
    if (!row || row.processed_at) return
    if (row.earlier) throw new WaitForEarlier(`event ${eventId} waits for an earlier event about ${row.subject}`)
    const event = toEvent(row)
    for (const h of this.handlers) if (matchesAny(event.type, h.patterns)) await h.fn(event)
    if (this.sink) {
      // Only this tenant's installs are asked, and only matching events handed over.
      for (const s of await this.sink.subscriptions(tenantId)) if (matchesAny(event.type, s.patterns)) await this.sink.deliver(tenantId, s.pluginId, event)
    }
    const jobs: QueueJob[] = []
    await this.db.inOrg(
      tenantId,
      async (tx) => {
        const endpoints = await tx.sql<{ id: string }>(`select id from webhook_endpoints where status = 'active' and types && ?::text[]`, [sqlArray(patternsMatching(event.type))])
        if (endpoints.length) {
          const ids = endpoints.map(() => uuidv7())
          const created = await tx.sql<{ id: string }>(
            `insert into webhook_deliveries (id, tenant_id, endpoint_id, event_id, event_type, next_attempt_at)
             select d.id, ?::uuid, d.endpoint_id, ?::uuid, ?, now() from unnest(?::uuid[], ?::uuid[]) as d(id, endpoint_id)
             on conflict (endpoint_id, event_id) do nothing returning id`,
            [tenantId, eventId, event.type, sqlArray(ids), sqlArray(endpoints.map((e) => e.id))],
          )
          for (const d of created) jobs.push(deliverJob(d.id, tenantId, 1))
        }
        const [marked] = await tx.sql<{ id: string }>('update events set processed_at = now() where id = ?::uuid and processed_at is null returning id', [eventId])
        if (!marked) throw new WaitForEarlier('processed concurrently')
        // The embedded queue takes the delivery jobs in this same transaction.
        if (this.queue.kind === 'postgres') await this.queue.add(jobs, tx)
      },
      'trellis_events',
    ).catch((err) => {
      if (err instanceof WaitForEarlier && err.message === 'processed concurrently') return
      throw err
    })
    if (this.queue.kind !== 'postgres' && jobs.length) {
      // After commit, so the worker sees the rows; a lost add is picked up by the sweep.
      await this.queue.add(jobs).catch((err) => this.logger?.warn({ err }, 'queueing deliveries failed; the sweep retries'))
    }
  }

  /** One attempt of one webhook delivery. */
  async deliver(deliveryId: string, tenantId: string, attempt: number): Promise<void> {
    const leaseSeconds = ((this.opts.totalTimeoutMs ?? 15_000) + 5_000) / 1000
    const [d] = await this.db.inOrg(
      tenantId,
      (tx) =>
        tx.sql<ClaimedDelivery>(
          `update webhook_deliveries d set attempts = d.attempts + 1, next_attempt_at = now() + make_interval(secs => ?::double precision), updated_at = now()
             from webhook_endpoints e, events v
            where d.id = ?::uuid and d.status = 'pending' and d.attempts = ? and e.id = d.endpoint_id and v.id = d.event_id
           returning d.id, d.attempts, d.endpoint_id, e.url, e.status as endpoint_status, e.secret_enc, e.previous_secret_enc, e.previous_secret_expires_at,
                     v.id as event_id, v.type, v.source, v.subject, v.time, v.data, v.tenant_id`,
          [leaseSeconds, deliveryId, attempt - 1],
        ),
      'trellis_events',
    )
    if (!d) return // delivered, dead-lettered, or this attempt already ran
    if (d.endpoint_status !== 'active') {
      await this.record(tenantId, d, { status: 'failed', error: 'endpoint disabled', durationMs: 0 })
      return
    }
    const secrets = [this.secrets.open(d.secret_enc, webhookSecretAd(d.endpoint_id))]
    if (d.previous_secret_enc && d.previous_secret_expires_at && new Date(d.previous_secret_expires_at).getTime() > Date.now()) secrets.push(this.secrets.open(d.previous_secret_enc, webhookSecretAd(d.endpoint_id)))
    const event = toEvent(d)
    const body = JSON.stringify({ id: event.id, type: event.type, timestamp: event.time, source: event.source, subject: event.subject, tenantId: event.tenantId, data: event.data })
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
          'webhook-id': event.id,
          'webhook-timestamp': String(timestamp),
          'webhook-signature': signWebhook(secrets, event.id, timestamp, body),
        },
        body,
        connectTimeoutMs: this.opts.connectTimeoutMs ?? 5_000,
        totalTimeoutMs: this.opts.totalTimeoutMs ?? 15_000,
        maxResponseBytes: 1024,
      })
      statusCode = res.status
      response = res.body
    } catch (err) {
      const e = err as { code?: string; message?: string }
      error = `${e.code ?? 'ERROR'}: ${e.message ?? String(err)}`.slice(0, 500)
    }
    const durationMs = Math.round(performance.now() - started)
    const ok = statusCode !== null && statusCode >= 200 && statusCode < 300
    if (ok) return this.record(tenantId, d, { status: 'delivered', statusCode, response, durationMs })
    if (statusCode === 410) return this.record(tenantId, d, { status: 'failed', statusCode, response, durationMs, disableEndpoint: true })
    const schedule = this.opts.retryScheduleMs
    if (d.attempts > schedule.length) {
      this.logger?.warn({ tenantId, deliveryId, endpointId: d.endpoint_id, eventId: d.event_id, statusCode, error }, 'webhook delivery dead-lettered after its last retry')
      return this.record(tenantId, d, { status: 'failed', statusCode, response, error, durationMs })
    }
    // Exponential schedule with ±20 % jitter, so a recovering receiver is not hit by a thundering herd.
    const delay = Math.round(schedule[d.attempts - 1]! * (0.8 + Math.random() * 0.4))
    await this.record(tenantId, d, { status: 'pending', statusCode, response, error, durationMs, retryInMs: delay })
    await this.queue.add([{ ...deliverJob(d.id, tenantId, d.attempts + 1), delayMs: delay }]).catch((err) => this.logger?.warn({ err }, 'queueing a retry failed; the sweep retries'))
  }

  private async record(
    tenantId: string,
    d: ClaimedDelivery,
    r: { status: 'delivered' | 'failed' | 'pending'; statusCode?: number | null; response?: string | null; error?: string | null; durationMs: number; retryInMs?: number; disableEndpoint?: boolean },
  ): Promise<void> {
    await this.db.inOrg(
      tenantId,
      async (tx: Tx) => {
        await tx.sql(
          `with a as (
             insert into webhook_attempts (id, tenant_id, delivery_id, attempt, status_code, duration_ms, error, response) values (?::uuid, ?::uuid, ?::uuid, ?, ?, ?, ?, ?)
           )
           update webhook_deliveries set status = ?, last_status = ?, updated_at = now(),
                  next_attempt_at = case when ?::double precision is null then null else now() + make_interval(secs => ?::double precision) end
            where id = ?::uuid`,
          [uuidv7(), tenantId, d.id, d.attempts, r.statusCode ?? null, r.durationMs, r.error ?? null, r.response ?? null, r.status, r.statusCode ?? null, r.retryInMs === undefined ? null : r.retryInMs / 1000, r.retryInMs === undefined ? null : r.retryInMs / 1000, d.id],
        )
        if (r.disableEndpoint) {
          await tx.sql(`update webhook_endpoints set status = 'disabled', disabled_reason = ?, updated_at = now() where id = ?::uuid`, ['the receiver answered 410 Gone', d.endpoint_id])
          this.logger?.warn({ tenantId, endpointId: d.endpoint_id }, 'webhook endpoint disabled: the receiver answered 410 Gone')
        }
      },
      'trellis_events',
    )
  }

  /** Queues another attempt of a delivery (redelivery from the API). */
  async requeue(deliveryId: string, tenantId: string, attempts: number): Promise<void> {
    await this.queue.add([deliverJob(deliveryId, tenantId, attempts + 1)])
  }

  /** Waits until nothing is being dispatched (tests, shutdown). */
  async drain(): Promise<void> {
    while (this.running || this.scheduled) await (this.running ?? new Promise((r) => setImmediate(r)))
  }

  async close(): Promise<void> {
    this.closed = true
    if (this.sweepTimer) clearInterval(this.sweepTimer)
    await this.running
    await this.queue.close()
  }
}

function deliverJob(deliveryId: string, tenantId: string, attempt: number): QueueJob {
  return { id: `dlv_${deliveryId}_${attempt}`, name: 'deliver', data: { deliveryId, tenantId, attempt } }
}
