import { Queue, Worker } from 'bullmq'
import { Redis } from 'ioredis'
import type { Logger } from 'pino'
import { RETRY_DELAY_MS, type JobHandler, type JobQueue, type QueueJob } from './queue.js'

/**
 * BullMQ on Redis (REDIS_URL). Redis holds only wake-ups: the outbox and the delivery rows in
 * PostgreSQL are the truth, and the dispatcher's sweep re-adds whatever a Redis restart lost.
 */
export class BullMqJobQueue implements JobQueue {
  readonly kind = 'bullmq' as const
  private readonly queue: Queue
  private worker: Worker | undefined
  private readonly producer: Redis
  private consumer: Redis | undefined

  constructor(
    private readonly redisUrl: string,
    private readonly name: string,
    private readonly prefix = 'trellis',
    private readonly logger?: Logger,
  ) {
    // Adds fail fast while Redis is away (the outbox keeps the events) instead of queueing in memory.
    this.producer = new Redis(redisUrl, { enableOfflineQueue: false, maxRetriesPerRequest: 1, retryStrategy: (n: number) => Math.min(n * 100, 1000) })
    this.producer.on('error', (err) => this.logger?.debug({ err }, 'event queue connection'))
    this.queue = new Queue(name, { connection: this.producer as never, prefix })
    this.queue.on('error', (err) => this.logger?.debug({ err }, 'event queue connection'))
  }

  async add(jobs: QueueJob[]): Promise<void> {
    if (jobs.length === 0) return
    await this.queue.addBulk(
      jobs.map((j) => ({
        name: j.name,
        data: j.data,
        opts: { jobId: j.id, delay: j.delayMs ? Math.max(0, Math.round(j.delayMs)) : undefined, removeOnComplete: true, removeOnFail: 1000, attempts: 1_000_000, backoff: { type: 'fixed', delay: RETRY_DELAY_MS } },
      })),
    )
  }

  work(handler: JobHandler, opts: { concurrency?: number } = {}): void {
    if (this.worker) return
    this.consumer = new Redis(this.redisUrl, { maxRetriesPerRequest: null, retryStrategy: (n: number) => Math.min(n * 100, 1000) })
    this.consumer.on('error', (err) => this.logger?.debug({ err }, 'event worker connection'))
    this.worker = new Worker(this.name, async (job) => handler({ id: job.id!, name: job.name, data: job.data as Record<string, unknown>, attempt: job.attemptsMade + 1 }), {
      connection: this.consumer as never,
      prefix: this.prefix,
      concurrency: opts.concurrency ?? 8,
      // Our own sweep recovers stalled work from PostgreSQL; BullMQ's stall check stays on too.
      stalledInterval: 5000,
    })
    this.worker.on('error', (err) => this.logger?.debug({ err }, 'event worker connection'))
    this.worker.on('failed', (job, err) => this.logger?.warn({ err, job: job?.id }, 'job failed; it runs again'))
  }

  async close(): Promise<void> {
    await this.worker?.close()
    await this.queue.close()
    this.consumer?.disconnect()
    this.producer.disconnect()
  }
}
