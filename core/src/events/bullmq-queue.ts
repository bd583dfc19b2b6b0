import { Queue, Worker } from 'bullmq'
import { Redis } from 'ioredis'
import type { Logger } from 'pino'
import {
  RETRY_DELAY_MS,
  tenantOf,
  type AddResult,
  type JobHandler,
  type JobQueue,
  type QueueJob,
  type QueueOptions,
} from './queue.js'
import { TenantFairness } from './bullmq-fairness.js'

/** How long closing waits on BullMQ while Redis is away before cutting its connections. */
const AWAY_CLOSE_MS = 2000

/**
 * A BullMQ worker renews its running jobs' locks on a timer that only the end of its own close()
 * stops. A close given up because Redis went away never gets there, and that timer would keep
 * the process alive for ever; it is stopped here (BullMQ 6's worker keeps it as `lockManager`).
 */
function stopLockRenewal(worker: Worker | undefined): void {
  void (worker as unknown as { lockManager?: { close(): Promise<void> } } | undefined)?.lockManager?.close()
}

/**
 * BullMQ on Redis (REDIS_URL). Redis holds only wake-ups: the outbox and the delivery rows in
 * PostgreSQL are the truth, and the dispatcher's sweep re-adds whatever a Redis restart lost.
 * Tenants are served fairly through job priorities (see {@link TenantFairness}, ADR 0012).
 */

export class BullMqJobQueue implements JobQueue {
  readonly kind = 'bullmq' as const
  private readonly queue: Queue
  private worker: Worker | undefined
  private readonly producer: Redis
  private consumer: Redis | undefined
  private readonly fairness: TenantFairness

  constructor(
    private readonly redisUrl: string,
    private readonly name: string,
    private readonly prefix = 'trellis',
    private readonly logger?: Logger,
    private readonly opts: QueueOptions = {},
  ) {
    // Adds fail fast while Redis is away (the outbox keeps the events) instead of queueing in memory.
    this.producer = new Redis(redisUrl, {
      enableOfflineQueue: false,
      maxRetriesPerRequest: 1,
      retryStrategy: (n: number) => Math.min(n * 100, 1000),
    })
    this.producer.on('error', (err) => this.logger?.debug({ err }, 'event queue connection'))
    this.queue = new Queue(name, { connection: this.producer as never, prefix })
    this.queue.on('error', (err) => this.logger?.debug({ err }, 'event queue connection'))
    this.fairness = new TenantFairness(this.producer, `${prefix}:${name}:`, `${prefix}:fair:${name}:`, opts.tenantCap)
  }

  async add(jobs: QueueJob[]): Promise<AddResult> {
    if (jobs.length === 0) return { refused: [] }
    await this.queue.waitUntilReady()
    const lanes = jobs.map((j) => ({ id: j.id, tenant: tenantOf(j) }))
    const priorities = await this.fairness.admit(lanes)
    const refused = jobs.filter((_, i) => priorities[i] === -1).map((j) => j.id)
    const admitted = jobs.flatMap((j, i) => (priorities[i]! > 0 ? [{ job: j, priority: priorities[i]! }] : []))
    try {
      if (admitted.length)
        await this.queue.addBulk(
          admitted.map(({ job: j, priority }) => ({
            name: j.name,
            data: j.data,
            opts: {
              jobId: j.id,
              priority,
              delay: j.delayMs ? Math.max(0, Math.round(j.delayMs)) : undefined,
              removeOnComplete: true,
              removeOnFail: 1000,
              attempts: 1_000_000,
              backoff: { type: 'fixed', delay: RETRY_DELAY_MS },
            },
          })),
        )
    } catch (err) {
      await this.fairness.release(admitted.map(({ job }) => ({ id: job.id, tenant: tenantOf(job) }))).catch(() => {})
      throw err
    }
    if (refused.length)
      this.logger?.warn(
        { queue: this.name, refused: refused.length },
        'tenant at its queue cap: its further work waits in the database',
      )
    return { refused }
  }

  work(handler: JobHandler, opts: { concurrency?: number } = {}): void {
    if (this.worker) return
    this.consumer = new Redis(this.redisUrl, {
      maxRetriesPerRequest: null,
      retryStrategy: (n: number) => Math.min(n * 100, 1000),
    })
    this.consumer.on('error', (err) => this.logger?.debug({ err }, 'event worker connection'))
    this.worker = new Worker(
      this.name,
      async (job) => {
        const data = job.data as Record<string, unknown>
        await handler({ id: job.id!, name: job.name, data, attempt: job.attemptsMade + 1 })
        // Done: the job no longer counts against its tenant (a failure keeps it queued for its retry).
        await this.fairness
          .release([{ id: job.id!, tenant: tenantOf({ data }) }])
          .catch((err) => this.logger?.warn({ err }, 'releasing a job from its tenant count failed'))
      },
      {
        connection: this.consumer as never,
        prefix: this.prefix,
        concurrency: opts.concurrency ?? 8,
        // Our own sweep recovers stalled work from PostgreSQL; BullMQ's stall check stays on too.
        stalledInterval: this.opts.lockMs ? Math.min(5000, this.opts.lockMs) : 5000,
        ...(this.opts.lockMs ? { lockDuration: this.opts.lockMs } : {}),
      },
    )
    this.worker.on('error', (err) => this.logger?.debug({ err }, 'event worker connection'))
    this.worker.on('failed', (job, err) => this.logger?.warn({ err, job: job?.id }, 'job failed; it runs again'))
  }

  async close(): Promise<void> {
    // With Redis away, BullMQ's close waits on commands that are never answered. A running job
    // cannot be marked done without Redis anyway (its lock lapses and it runs again; handlers are
    // idempotent), so the worker closes without waiting for them.
    const away = () =>
      this.producer.status !== 'ready' || (this.consumer !== undefined && this.consumer.status !== 'ready')
    const forced = away()
    const closing = (async () => {
      await this.worker?.close(forced)
      await this.queue.close()
    })()
    const within = (ms: number, p: Promise<unknown>) =>
      Promise.race([
        p.then(
          () => true,
          () => true,
        ),
        new Promise<boolean>((r) => setTimeout(() => r(false), ms).unref()),
      ])
    // A graceful close waits as long as Redis answers. Once Redis is away — when closing starts or
    // while it runs — even a forced close can wait on a command never answered (the lock
    // manager's, the blocking connection's): after a moment the connections are cut instead.
    while (!(await within(250, closing))) {
      if (!away()) continue
      if (!(await within(AWAY_CLOSE_MS, closing))) {
        await within(AWAY_CLOSE_MS, Promise.allSettled([this.worker?.disconnect(), this.queue.disconnect()]))
        stopLockRenewal(this.worker)
      }
      break
    }
    this.consumer?.disconnect()
    this.producer.disconnect()
  }
}
