import type { Logger } from 'pino'
import type { Database, TransactionSource } from '../db/database.js'
import type { SecretBox } from '../crypto/secret-box.js'
import type { EgressGuard } from '../egress/egress-guard.js'
import type { JobQueue, RunningJob } from './queue.js'
import type { KernelEventHandler, PluginEventSink } from './subscribers.js'
import { eventMetrics, type EventMetrics } from '../observability/metrics.js'
import { EventRetention, type RetentionOptions } from './retention.js'
import { AttemptRecorder } from './attempt-recorder.js'
import { WebhookDelivery } from './webhook-delivery.js'
import { FanOut } from './fan-out.js'
import { Dispatcher } from './dispatcher.js'
import { deliverJob } from './delivery-types.js'
import { SubscriberIndex } from './subscriber-index.js'

export { uuidv7Floor } from './retention.js'
export { DELIVERY_FAILED, webhookSecretAd, type FailureReason } from './delivery-types.js'

export interface EventSystemOptions extends RetentionOptions {
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
  /** Where the pipeline's Prometheus metrics go (the process's, which /metrics serves, by default). */
  metrics?: EventMetrics
}

/**
 * The event pipeline: outbox → queue → subscribers. The dispatcher (dispatcher.ts) moves
 * committed outbox rows to the queue; a worker fans each event out (fan-out.ts), in order per
 * subject, to in-process handlers, plugin subscribers and the tenant's webhook endpoints; each
 * webhook delivery (webhook-delivery.ts) is attempted in order per subject and endpoint, its
 * outcomes recorded in batches (attempt-recorder.ts); old rows are purged (retention.ts).
 * PostgreSQL is the source of truth throughout: the sweep re-queues any event or delivery whose
 * job was lost, and handlers are idempotent, so delivery is at least once.
 */
export class EventSystem {
  private readonly handlers: Array<{ patterns: string[]; fn: KernelEventHandler }> = []
  private readonly subscribers: { handlers: EventSystem['handlers']; sink: PluginEventSink | undefined }
  private sweepTimer: NodeJS.Timeout | undefined
  private unsetBacklog: (() => void) | undefined
  readonly metrics: EventMetrics
  private readonly retention: EventRetention
  private readonly recorder: AttemptRecorder
  private readonly delivery: WebhookDelivery
  private readonly fan: FanOut
  private readonly dispatcher: Dispatcher
  /** Which event types each tenant's subscribers want: an event nobody wants is written processed (ADR 0082). */
  readonly subscriberIndex: SubscriberIndex

  /** Every transaction of the pipeline comes from the background pool (ADR 0055). */
  private readonly db: TransactionSource

  constructor(
    database: Database,
    readonly queue: JobQueue,
    secrets: SecretBox,
    readonly egress: EgressGuard,
    private readonly opts: EventSystemOptions,
    private readonly logger?: Logger,
  ) {
    const db = database.background
    this.db = db
    this.metrics = opts.metrics ?? eventMetrics
    this.subscribers = { handlers: this.handlers, sink: undefined }
    this.subscriberIndex = new SubscriberIndex(db, () => this.handlers.flatMap((h) => h.patterns), {}, logger)
    this.retention = new EventRetention(db, opts, logger)
    this.recorder = new AttemptRecorder(
      db,
      this.metrics,
      {
        emitted: (n) => {
          this.metrics.emitted.inc(n)
          this.nudge()
        },
        unblocked: (tenantId, ids) => this.delivery.release(tenantId, ids),
      },
      logger,
    )
    this.delivery = new WebhookDelivery(db, queue, secrets, egress, this.recorder, this.metrics, opts, logger)
    this.fan = new FanOut(db, queue, this.delivery, this.subscribers, this.metrics, opts)
    this.dispatcher = new Dispatcher(
      db,
      queue,
      this.fan,
      this.delivery,
      (job) => this.runJob(job),
      () => !this.subscribers.sink && this.handlers.length === 0,
      { staleMs: opts.staleMs ?? 30_000, worker: opts.worker ?? true },
      logger,
    )
  }

  /** Runs `fn` (in this process, after commit, at least once) for events matching `patterns`. */
  on(patterns: string | string[], fn: KernelEventHandler): void {
    this.handlers.push({ patterns: Array.isArray(patterns) ? patterns : [patterns], fn })
  }

  /** Where plugin subscribers are reached (the plugin host). */
  setPluginSink(sink: PluginEventSink | undefined): void {
    this.subscribers.sink = sink
  }

  /**
   * Starts the queue's workers, the sweep and retention — or, with `worker: false` (an API
   * process), only what moves this process's own commits to the queue: worker processes
   * consume, sweep and purge.
   */
  start(): void {
    this.unsetBacklog = this.metrics.setBacklogSource(() => this.backlog())
    if (this.opts.worker ?? true) {
      this.queue.work((job) => this.runJob(job), {
        concurrency: this.opts.concurrency ?? (this.queue.kind === 'bullmq' ? 64 : 16),
      })
      this.sweepTimer = setInterval(() => void this.sweep(), this.opts.sweepMs ?? 1000)
      this.sweepTimer.unref()
      this.retention.start()
    }
    this.nudge()
  }

  /** What the outbox and the delivery table hold now (the backlog gauges on /metrics). */
  async backlog(): Promise<{ outbox: number; oldestSeconds: number; pendingDeliveries: number }> {
    const [row] = await this.db.inOrg(
      null,
      (tx) =>
        tx.sql<{ outbox: number; oldest: number | null; pending: number }>(
          `select (select count(*) from events where processed_at is null)::int as outbox,
                  extract(epoch from clock_timestamp() - (select time from events where processed_at is null order by id limit 1))::float8 as oldest,
                  (select count(*) from webhook_deliveries where status = 'pending')::int as pending`,
        ),
      'trellis_events',
    )
    return { outbox: row!.outbox, oldestSeconds: Math.max(0, row!.oldest ?? 0), pendingDeliveries: row!.pending }
  }

  /**
   * Sets how long events and deliveries are kept (from the kernel's configuration) unless the
   * options already said, and starts the retention job if the system is running.
   */
  configureRetention(r: { eventRetentionDays: number; deliveryRetentionDays: number }): void {
    this.retention.configure(r)
    if (this.sweepTimer) this.retention.start()
  }

  /** Purges processed events and finished deliveries past their retention (see retention.ts). */
  purge(now?: Date): Promise<{ events: number; deliveries: number }> {
    return this.retention.purge(now)
  }

  /** Wakes the dispatcher after a commit that emitted (with the events' ids when known). */
  nudge(ids?: readonly string[]): void {
    this.dispatcher.nudge(ids)
  }

  /** Moves up to one batch of outbox rows (those of `ids` when given) to the queue; returns how many. */
  dispatchOnce(ids?: readonly string[]): Promise<number> {
    return this.dispatcher.dispatchOnce(ids)
  }

  /** The safety net: undispatched or lost events, and due deliveries whose job was lost. */
  sweep(): Promise<void> {
    return this.dispatcher.sweep()
  }

  private async runJob(job: RunningJob): Promise<void> {
    if (job.name === 'event')
      return this.fan.fanOut(
        job.data.eventId as string,
        job.data.tenantId as string,
        job.data.type as string | undefined,
      )
    if (job.name === 'events')
      return this.fan.fanOutBatch(job.data.tenantId as string, job.data.events as Array<{ id: string; type: string }>)
    if (job.name === 'deliver')
      return this.delivery.deliver(
        job.data.deliveryId as string,
        job.data.tenantId as string,
        job.data.attempt as number,
      )
    this.logger?.warn({ job: job.id }, 'unknown job dropped')
  }

  /** Queues another attempt of a delivery (redelivery from the API). */
  async requeue(deliveryId: string, tenantId: string, attempts: number): Promise<void> {
    await this.queue.add([deliverJob(deliveryId, tenantId, attempts + 1)])
  }

  /** Waits until nothing is being dispatched (tests, shutdown). */
  drain(): Promise<void> {
    return this.dispatcher.drain()
  }

  async close(): Promise<void> {
    if (this.sweepTimer) clearInterval(this.sweepTimer)
    this.subscriberIndex.close()
    this.unsetBacklog?.()
    await this.retention.close()
    await this.dispatcher.close()
    await this.queue.close()
    await this.recorder.settled()
    this.egress.close()
  }
}
